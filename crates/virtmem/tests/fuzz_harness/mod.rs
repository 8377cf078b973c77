//! The fuzzing harness, shared by the cargo-fuzz target (`fuzz/fuzz_targets/virtual_calls.rs`,
//! libFuzzer on nightly) and the ordinary test `tests/fuzz_replay.rs` (stable, bounded by count).
//!
//! Bytes become a sequence of Win32 calls on the process's native space, with hostile
//! arguments: NULL, misaligned and overflowing addresses and sizes, addresses of our own stack,
//! code, heap, libraries and of mappings the harness made itself (canaries), every flag bit,
//! NULL and misaligned out-pointers. After every call the harness checks:
//!
//! 1. **last error**: a failing call set the thread's last error (a sentinel is set before the
//!    call) to a code virtmem documents, never ERROR_INTERNAL_ERROR (a panic inside virtmem);
//! 2. **bookkeeping ≡ kernel**: for every allocation of the space, every region VirtualQuery
//!    describes is mapped in `/proc/self/maps` with the permissions its state implies;
//! 3. **no foreign mapping changed**: every mapping outside virtmem's allocations keeps its
//!    permissions (file mappings, stacks, heap, canaries, whose contents are checked too), except
//!    the growth and trimming of malloc's own heaps and the canaries' VirtualProtect;
//! 4. **all or nothing**: a failing call left the allocations, every region of them and their
//!    kernel mappings exactly as they were (except the documented partial results: VirtualLock
//!    meeting a guard page, MEM_RESET_UNDO reporting a loss, FreeUserPhysicalPages' count);
//! 5. **effects**: a successful call did what it says (new allocations over free ranges only,
//!    committed pages with the asked protection, recommitted pages zero, data kept, written
//!    pages of MEM_WRITE_WATCH regions reported);
//! 6. no panic crosses the API: every call is also wrapped in `catch_unwind`;
//! 7. **sections** (`sections.md`): pagefile sections are created, duplicated, opened, closed
//!    and mapped (MapViewOfFile*, also into placeholders with MapViewOfFile3 and
//!    MEM_REPLACE_PLACEHOLDER) with hostile handles, sizes, offsets and addresses, views are
//!    committed, protected and unmapped; views are MEM_MAPPED (and nothing else is), their
//!    pages are mapped `MAP_SHARED` except copy-on-write ones (`p`), the data written through
//!    one view of a section reads back through every other shared view of it, a handle the
//!    input holds always closes, and every section is gone (its memfd closed) at the end;
//! 8. **heaps** (`heap.rs`, `docs/heap-spec.md`): HeapCreate … HeapWalk and Global*/Local*
//!    with hostile heaps, pointers, handles and sizes (selector 19, or most steps of an input
//!    that starts with `HEAP_MAGIC`): every block keeps its contents and HeapSize, blocks never
//!    overlap, a full walk of every heap reports exactly the live blocks, refused calls change
//!    nothing and give the spec's codes, the heaps' reservations (learned from their walks)
//!    are the only allocations heap calls make.
//!
//! Each input starts from and returns to the same state: what it allocated is released, its
//! views unmapped and its handles closed, its AWE pages freed, foreign locks undone, canaries
//! restored.

#![allow(dead_code)]

mod heap;
pub use heap::HEAP_MAGIC;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{null, null_mut};
use std::sync::OnceLock;
use virtmem::win32::*;
use virtmem::WatchKind;

pub const P: usize = 0x1000;
pub const G: usize = 0x10000;
/// Most calls per input.
pub const MAX_CALLS: usize = 64;
const SENTINEL: u32 = 0x5EED_0BAD;
/// The codes a failing virtmem call may leave (README, `Error::win32_code`, `sections.md` §20).
const KNOWN_CODES: [u32; 22] = [
    87,
    487,
    998,
    6,
    8,
    1455,
    158,
    1453,
    24,
    50,
    999,
    0x8000_0001,
    1314,
    1450,
    // Sections.
    2,
    3,
    5,
    193,
    206,
    1006,
    1132,
    1224,
];
const ARENA_GRANULES: usize = 256;

// ------------------------------------------------------------------------------------------
// Bytes → values
// ------------------------------------------------------------------------------------------

/// A cursor over the input; reads past the end give zeros (and `done()` says so).
pub struct Bytes<'a> {
    d: &'a [u8],
    i: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(d: &'a [u8]) -> Self {
        Bytes { d, i: 0 }
    }
    pub fn done(&self) -> bool {
        self.i >= self.d.len()
    }
    pub fn u8(&mut self) -> u8 {
        let v = self.d.get(self.i).copied().unwrap_or(0);
        self.i += 1;
        v
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn u64(&mut self) -> u64 {
        (self.u32() as u64) | ((self.u32() as u64) << 32)
    }
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.u8() as usize % v.len()]
    }
}

// ------------------------------------------------------------------------------------------
// The process: arena, foreign targets, canaries
// ------------------------------------------------------------------------------------------

struct Env {
    /// ARENA_GRANULES free granules for fixed-address requests.
    arena: usize,
    /// Addresses of memory virtmem did not allocate (name, address).
    targets: Vec<(&'static str, usize)>,
    /// Canary mappings (made with plain mmap) that VirtualProtect may change.
    canaries: Vec<usize>,
    max_address: usize,
    large: usize,
    /// Allocations that existed before the harness ran (other users of the native space).
    baseline: BTreeSet<u64>,
    /// Section memfds open before the harness ran.
    memfds: usize,
}

/// How many section memfds the process has open (`/proc/self/fd`).
fn section_memfds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|l| l.to_string_lossy().contains("memfd:virtmem-section"))
                .count()
        })
        .unwrap_or(0)
}

const CANARY_PAGES: usize = 4;

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        // MEM_LARGE_PAGES without a hugetlb pool: the opt-in transparent mode, so the
        // large-page paths succeed and are exercised (read once, before any large-page call).
        if std::env::var_os("VIRTMEM_LARGE_PAGES").is_none() {
            std::env::set_var("VIRTMEM_LARGE_PAGES", "transparent");
        }
        assert_eq!(
            virtmem::Layout::native().page_size,
            P,
            "4 KiB pages assumed"
        );
        // A guard-page violation must not end the process: continue (the guard is consumed).
        // SAFETY: the handler only uses atomics and memory it owns.
        unsafe { virtmem::set_guard_page_handler(Some(Box::new(|_| true))) };
        // HEAP_GENERATE_EXCEPTIONS failures call the hook (counted, continued) instead of
        // aborting the process.
        heap::install_hook();
        let arena = find_arena();
        let mut canaries = Vec::new();
        for _ in 0..2 {
            // SAFETY: a fresh anonymous mapping that only the harness uses.
            let p = unsafe {
                libc::mmap(
                    null_mut(),
                    CANARY_PAGES * P,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            canaries.push(p as usize);
        }
        static RODATA: [u8; 64] = [0x5A; 64];
        let heap = Box::leak(Box::new([0x33u8; 256])).as_ptr() as usize;
        let mut targets = vec![
            ("code", run_input as *const () as usize),
            ("rodata", RODATA.as_ptr() as usize),
            ("heap", heap),
            ("libc", libc::getpid as *const () as usize),
            // SAFETY: getauxval only reads the auxiliary vector.
            ("vdso", unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) }
                as usize),
        ];
        for (i, &c) in canaries.iter().enumerate() {
            targets.push((if i == 0 { "canary0" } else { "canary1" }, c));
        }
        let l = virtmem::Layout::native();
        let env = Env {
            arena,
            targets,
            canaries,
            max_address: l.max_address,
            large: GetLargePageMinimum(),
            baseline: virtmem::allocations().iter().map(|a| a.2).collect(),
            memfds: section_memfds(),
        };
        for &c in &env.canaries {
            fill_canary(c);
        }
        env
    })
}

/// A free range of ARENA_GRANULES granules far below where the kernel puts mappings.
fn find_arena() -> usize {
    let size = ARENA_GRANULES * G;
    for i in 0..512usize {
        let want = 0x20_0000_0000usize + i * 0x2_0000_0000;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces a mapping; unmapped again at once.
        let p = unsafe {
            libc::mmap(
                want as *mut c_void,
                size,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            continue;
        }
        // SAFETY: our own fresh mapping.
        unsafe { libc::munmap(p, size) };
        if p as usize == want {
            return want;
        }
    }
    panic!("no free arena");
}

fn canary_word(base: usize, i: usize) -> u64 {
    (base as u64).rotate_left(i as u32) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn fill_canary(c: usize) {
    // SAFETY: the harness's own mapping; made read-write first.
    unsafe {
        assert_eq!(
            libc::mprotect(
                c as *mut c_void,
                CANARY_PAGES * P,
                libc::PROT_READ | libc::PROT_WRITE
            ),
            0
        );
        for i in 0..CANARY_PAGES * P / 8 {
            ((c + i * 8) as *mut u64).write_volatile(canary_word(c, i));
        }
    }
}

/// Reads `buf.len()` bytes at `addr` whatever the protection (`/proc/self/mem`).
fn read_mem(addr: usize, buf: &mut [u8]) -> bool {
    use std::os::unix::fs::FileExt;
    static MEM: OnceLock<std::fs::File> = OnceLock::new();
    let f = MEM.get_or_init(|| std::fs::File::open("/proc/self/mem").expect("/proc/self/mem"));
    f.read_exact_at(buf, addr as u64).is_ok()
}

fn check_canary_contents(c: usize, log: &Log) {
    let mut buf = vec![0u8; CANARY_PAGES * P];
    assert!(read_mem(c, &mut buf), "{}: cannot read canary {c:#x}", log);
    for i in 0..CANARY_PAGES * P / 8 {
        let v = u64::from_ne_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(
            v,
            canary_word(c, i),
            "{}: canary {c:#x} changed at offset {:#x}",
            log,
            i * 8
        );
    }
}

// ------------------------------------------------------------------------------------------
// /proc/self/maps
// ------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vma {
    pub start: usize,
    pub end: usize,
    pub perms: [u8; 4],
    pub path: String,
}

impl Vma {
    fn perms(&self) -> &str {
        std::str::from_utf8(&self.perms).unwrap_or("????")
    }
}

pub fn maps() -> Vec<Vma> {
    use std::io::Read;
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(1 << 20));
    }
    BUF.with(|b| {
        let mut b = b.borrow_mut();
        b.clear();
        std::fs::File::open("/proc/self/maps")
            .and_then(|mut f| f.read_to_end(&mut b))
            .expect("read /proc/self/maps");
        let text = std::str::from_utf8(&b).expect("utf8 maps");
        let mut out: Vec<Vma> = Vec::with_capacity(512);
        for l in text.lines() {
            let mut it = l.split_whitespace();
            let (Some(range), Some(perms)) = (it.next(), it.next()) else {
                continue;
            };
            let Some((s, e)) = range.split_once('-') else {
                continue;
            };
            let path = it.nth(3).unwrap_or("").to_string();
            let pb = perms.as_bytes();
            out.push(Vma {
                start: usize::from_str_radix(s, 16).unwrap(),
                end: usize::from_str_radix(e, 16).unwrap(),
                perms: [pb[0], pb[1], pb[2], pb[3]],
                path,
            });
        }
        out
    })
}

/// The pieces of the kernel's mappings over `[s, e)`, clipped (`None` pieces are unmapped).
fn kernel_pieces(m: &[Vma], s: usize, e: usize) -> Vec<(usize, usize, Option<[u8; 4]>)> {
    let mut out = Vec::new();
    let mut at = s;
    let i0 = m.partition_point(|v| v.end <= s);
    for v in &m[i0..] {
        if v.start >= e {
            break;
        }
        if v.start > at {
            out.push((at, v.start, None));
        }
        let (a, b) = (v.start.max(at), v.end.min(e));
        out.push((a, b, Some(v.perms)));
        at = b;
    }
    if at < e {
        out.push((at, e, None));
    }
    out
}

// ------------------------------------------------------------------------------------------
// The space as VirtualQuery tells it
// ------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub base: usize,
    pub size: usize,
    pub alloc_base: usize,
    pub alloc_protect: u32,
    pub state: u32,
    pub protect: u32,
    pub kind: u32,
}

pub fn query(addr: usize) -> Option<Region> {
    let mut m = MEMORY_BASIC_INFORMATION::default();
    // SAFETY: a valid out-pointer and its size.
    let n = unsafe { VirtualQuery(addr as *const c_void, &mut m, size_of_val(&m)) };
    (n != 0).then_some(Region {
        base: m.BaseAddress as usize,
        size: m.RegionSize,
        alloc_base: m.AllocationBase as usize,
        alloc_protect: m.AllocationProtect,
        state: m.State,
        protect: m.Protect,
        kind: m.Type,
    })
}

/// Every region of the allocation `[base, base+size)`.
pub fn regions_of(base: usize, size: usize) -> Vec<Region> {
    let mut out = Vec::new();
    let mut at = base;
    while at < base + size {
        let r = query(at).unwrap_or_else(|| panic!("VirtualQuery({at:#x}) failed"));
        assert!(r.size > 0 && r.base == at, "VirtualQuery({at:#x}): {r:?}");
        out.push(r);
        at += r.size;
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Normal,
    Awe,
    Large,
    Placeholder,
    /// A view of a section.
    View,
}

#[derive(Clone, Debug, PartialEq)]
struct State {
    allocs: Vec<(usize, usize, u64)>,
    regions: Vec<Region>,
    maps: Vec<Vma>,
}

fn state() -> State {
    let allocs = virtmem::allocations();
    let mut regions = Vec::new();
    for &(b, s, _) in &allocs {
        regions.extend(regions_of(b, s));
    }
    State {
        allocs,
        regions,
        maps: maps(),
    }
}

fn host_perms(protect: u32) -> &'static str {
    if protect & PAGE_GUARD != 0 {
        return "---";
    }
    match protect & 0xFF {
        PAGE_READONLY => "r--",
        PAGE_READWRITE => "rw-",
        PAGE_EXECUTE => "--x",
        PAGE_EXECUTE_READ => "r-x",
        PAGE_EXECUTE_READWRITE => "rwx",
        _ => "---",
    }
}

fn readable(protect: u32) -> bool {
    protect & PAGE_GUARD == 0
        && matches!(
            protect & 0xFF,
            PAGE_READONLY | PAGE_READWRITE | PAGE_EXECUTE_READ | PAGE_EXECUTE_READWRITE
        )
}

fn writable(protect: u32) -> bool {
    matches!(protect & 0xFF, PAGE_READWRITE | PAGE_EXECUTE_READWRITE)
}

// ------------------------------------------------------------------------------------------
// The harness
// ------------------------------------------------------------------------------------------

/// `VIRTMEM_FUZZ_TRACE=1`: print every call before it is made.
fn trace() -> bool {
    static T: OnceLock<bool> = OnceLock::new();
    *T.get_or_init(|| std::env::var_os("VIRTMEM_FUZZ_TRACE").is_some())
}

/// What happened, for failure messages.
pub struct Log(Vec<String>);

impl std::fmt::Display for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.len();
        let from = n.saturating_sub(12);
        write!(f, "after {n} calls (last: ")?;
        for l in &self.0[from..] {
            write!(f, "\n    {l}")?;
        }
        write!(f, ")")
    }
}

/// Figures of one or many inputs.
#[derive(Default, Debug, Clone, Copy)]
pub struct Stats {
    pub inputs: u64,
    pub calls: u64,
    pub failed_calls: u64,
    pub successes: u64,
    /// Section calls that succeeded, and reads and writes through views.
    pub section_successes: u64,
    /// Views mapped into placeholders (MEM_REPLACE_PLACEHOLDER).
    pub placeholder_views: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.inputs += o.inputs;
        self.calls += o.calls;
        self.failed_calls += o.failed_calls;
        self.successes += o.successes;
        self.section_successes += o.section_successes;
        self.placeholder_views += o.placeholder_views;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Data {
    Known(u64),
    /// MEM_RESET: this value or zero.
    Either(u64),
}

struct Harness<'e> {
    env: &'e Env,
    log: Log,
    stats: Stats,
    /// Allocation id → what it is, whether write-watched, whether signal-driven.
    kinds: HashMap<u64, (Kind, bool, bool)>,
    /// AWE frames owned.
    frames: Vec<usize>,
    /// Expected protection of each canary page (PROT_* bits).
    canary_prot: BTreeMap<usize, i32>,
    /// Pages written since their last clean (write-watched allocations): must be reported.
    dirty: BTreeSet<usize>,
    /// What the harness wrote at offset 0 of committed pages.
    data: BTreeMap<usize, Data>,
    /// Current write-watch mode requested.
    signal_mode: bool,
    /// Foreign ranges VirtualLock may have locked (undone at the end).
    foreign_locked: Vec<(usize, usize)>,
    /// A buffer for out-pointers (aligned and misaligned uses).
    outbuf: Vec<u64>,
    /// Sections: handles, views, what was written through them.
    sec: Sections,
    /// Heaps, their blocks, Global/Local handles (`heap.rs`).
    hm: heap::HeapModel,
}

/// What the harness knows of the sections of one input.
#[derive(Default)]
struct Sections {
    /// Open section handles: value → section (the harness's numbering).
    handles: BTreeMap<usize, u64>,
    /// Every handle value returned (closed ones too, maybe given out again since).
    seen: Vec<usize>,
    next: u64,
    /// Views: base → (allocation id, section, offset in the section, length).
    views: BTreeMap<usize, ViewRec>,
    /// What was written at offset 0 of shared section pages: (section, offset of the page).
    data: BTreeMap<(u64, u64), Data>,
    /// View pages that have (or may have) a private copy.
    copied: BTreeSet<usize>,
    /// The size asked for each section this input created (page-rounded).
    sizes: BTreeMap<u64, u64>,
}

#[derive(Clone, Copy, Debug)]
struct ViewRec {
    id: u64,
    sec: u64,
    offset: u64,
    len: usize,
}

/// Runs one input. Panics (with the call log) when an invariant breaks.
pub fn run_input(data: &[u8]) -> Stats {
    let env = env();
    let mut h = Harness {
        env,
        log: Log(Vec::new()),
        stats: Stats {
            inputs: 1,
            ..Stats::default()
        },
        kinds: HashMap::new(),
        frames: Vec::new(),
        canary_prot: BTreeMap::new(),
        dirty: BTreeSet::new(),
        data: BTreeMap::new(),
        signal_mode: false,
        foreign_locked: Vec::new(),
        outbuf: vec![0u64; 1024],
        sec: Sections::default(),
        hm: heap::HeapModel::default(),
    };
    for &c in &env.canaries {
        for i in 0..CANARY_PAGES {
            h.canary_prot
                .insert(c + i * P, libc::PROT_READ | libc::PROT_WRITE);
        }
    }
    virtmem::set_write_watch_mode(WatchKind::Kernel);
    let stack_var = 0u64;
    let stack = &stack_var as *const u64 as usize;
    // Inputs that start with HEAP_MAGIC make heap and Global/Local calls most of the time.
    let heap_mode = data.starts_with(HEAP_MAGIC);
    let mut b = Bytes::new(if heap_mode {
        &data[HEAP_MAGIC.len()..]
    } else {
        data
    });
    // The heaps' reservations (the process heap's, the handle table) are learned first: they
    // are the heaps', not the input's.
    let start = state();
    h.heap_begin(&start);
    let start = state();
    h.check_bookkeeping(&start);
    let mut before = start;
    for _ in 0..MAX_CALLS {
        if b.done() {
            break;
        }
        if heap_mode && b.u8() % 8 != 0 {
            before = h.heap_step(&mut b, stack, before);
            continue;
        }
        before = h.step(&mut b, stack, before);
    }
    h.finish();
    std::hint::black_box(&stack_var);
    h.stats
}

/// The outcome of one call as the harness sees it.
struct Outcome {
    ok: bool,
    /// GetLastError() after a failure (the sentinel if none was set).
    code: u32,
    /// Failure codes after which a partial change is allowed.
    partial_ok: bool,
}

impl Harness<'_> {
    fn ours(&self, st: &State, addr: usize) -> Option<(usize, usize, u64)> {
        let i = st.allocs.partition_point(|a| a.0 <= addr);
        let a = *st.allocs.get(i.checked_sub(1)?)?;
        (addr < a.0 + a.1).then_some(a)
    }

    fn is_baseline(&self, id: u64) -> bool {
        self.env.baseline.contains(&id)
    }

    /// Whether `[addr, addr+size)` (at least a page) touches a heap's reservation: freeing,
    /// decommitting, reprotecting or resetting a heap's memory behind its back is the caller's
    /// bug (as on Windows), not a case. Hostile addresses still reach them (one past the end
    /// of an allocation is often the next one, a heap segment); such calls are not made.
    fn heap_range(&self, st: &State, addr: usize, size: usize) -> bool {
        let end = addr.saturating_add(size.max(P));
        let i = st.allocs.partition_point(|a| a.0 + a.1 <= addr);
        st.allocs[i..]
            .iter()
            .take_while(|a| a.0 < end)
            .any(|a| self.hm.owned.contains_key(&a.2))
    }

    /// Our allocations (not the baseline's), for picking.
    fn mine<'s>(&self, st: &'s State) -> Vec<&'s (usize, usize, u64)> {
        st.allocs
            .iter()
            .filter(|a| !self.is_baseline(a.2) && !self.hm.owned.contains_key(&a.2))
            .collect()
    }

    // -------------------------------------------------------------------------------------
    // Argument pickers
    // -------------------------------------------------------------------------------------

    fn addr(&self, b: &mut Bytes, st: &State, stack: usize) -> usize {
        let mine = self.mine(st);
        let sel = b.u8();
        match sel % 16 {
            0 => 0,
            1..=5 if !mine.is_empty() => {
                let a = mine[b.u8() as usize % mine.len()];
                let pages = a.1 / P;
                let pg = match b.u8() % 4 {
                    0 => 0,
                    1 => pages.saturating_sub(1),
                    2 => pages, // one past the end
                    _ => b.u16() as usize % (pages + 1),
                };
                let off = if b.u8() % 4 == 0 {
                    b.u16() as usize % P
                } else {
                    0
                };
                a.0 + pg * P + off
            }
            1..=7 => {
                let g = b.u8() as usize % ARENA_GRANULES;
                let off = match b.u8() % 4 {
                    0 => 0,
                    1 => (b.u8() as usize % 16) * P,
                    2 => b.u16() as usize,
                    _ => G - P,
                };
                self.env.arena + g * G + off
            }
            8 | 9 => {
                let t = if b.u8() % 4 == 0 {
                    stack
                } else {
                    self.env.targets[b.u8() as usize % self.env.targets.len()].1
                };
                match b.u8() % 3 {
                    0 => t,
                    1 => t & !(P - 1),
                    _ => (t & !(P - 1)).wrapping_add((b.u8() as usize % 8) * P),
                }
            }
            10 | 11 => {
                let m = self.env.max_address;
                b.pick(&[
                    1,
                    0xFFF,
                    0xFFFF,
                    0x10000,
                    m,
                    m - P + 1,
                    m + 1 - G,
                    m + 1 - 2 * G,
                    m + 1,
                    0x8000_0000_0000,
                    usize::MAX,
                    usize::MAX - P + 1,
                    0xFFFF_8000_0000_0000,
                    0x7FFF_0000,
                    usize::MAX / 2,
                    P,
                ])
            }
            12 if !mine.is_empty() => {
                // The end of an allocation, or just inside it.
                let a = mine[b.u8() as usize % mine.len()];
                a.0 + a.1 - if b.u8() % 2 == 0 { 0 } else { P }
            }
            _ => b.u64() as usize,
        }
    }

    fn size(&self, b: &mut Bytes, addr: usize, st: &State) -> usize {
        let m = self.env.max_address;
        match b.u8() % 12 {
            0 => 0,
            1 => (b.u8() as usize % 8 + 1) * P,
            2 => (b.u8() as usize % 8 + 1) * G,
            3 => b.u16() as usize,
            4 => b.pick(&[1, P - 1, P, P + 1, G - 1, G, G + 1, 2 * G]),
            5 => {
                // Exactly to the end of the allocation holding addr (or a granule).
                match self.ours(st, addr) {
                    Some(a) => (a.0 + a.1).saturating_sub(addr).max(1),
                    None => G,
                }
            }
            6 => {
                // Hostile: overflow when rounded, beyond user space, huge.
                b.pick(&[
                    usize::MAX,
                    usize::MAX - P + 2,
                    usize::MAX - addr,
                    (usize::MAX - addr).wrapping_add(1),
                    (m + 1).wrapping_sub(addr),
                    (m + 2).wrapping_sub(addr),
                    1 << 46, // 64 TiB
                    1 << 40,
                    1 << 47,
                    isize::MAX as usize,
                    usize::MAX - G + 1,
                    (usize::MAX - addr).wrapping_sub(P - 2),
                ])
            }
            7 => b.u64() as usize,
            8 if self.env.large > 0 => self.env.large * (b.u8() as usize % 3 + 1),
            _ => (b.u8() as usize % 16 + 1) * P + if b.u8() % 3 == 0 { 1 } else { 0 },
        }
    }

    fn prot(&self, b: &mut Bytes) -> u32 {
        match b.u8() % 10 {
            0..=5 => b.pick(&[
                PAGE_NOACCESS,
                PAGE_READONLY,
                PAGE_READWRITE,
                PAGE_READWRITE,
                PAGE_EXECUTE,
                PAGE_EXECUTE_READ,
                PAGE_EXECUTE_READWRITE,
                PAGE_READWRITE | PAGE_GUARD,
                PAGE_READONLY | PAGE_GUARD,
                PAGE_READWRITE | PAGE_NOCACHE,
                PAGE_READWRITE | PAGE_WRITECOMBINE,
                PAGE_EXECUTE_READ | PAGE_TARGETS_INVALID,
            ]),
            6 => 1u32 << (b.u8() % 32),
            7 => (1u32 << (b.u8() % 32)) | (1u32 << (b.u8() % 32)),
            8 => b.pick(&[
                0,
                PAGE_WRITECOPY,
                PAGE_EXECUTE_WRITECOPY,
                PAGE_NOACCESS | PAGE_GUARD,
                PAGE_READWRITE | PAGE_NOCACHE | PAGE_GUARD,
                PAGE_READONLY | PAGE_READWRITE,
                u32::MAX,
            ]),
            _ => b.u32(),
        }
    }

    fn alloc_type(&self, b: &mut Bytes) -> u32 {
        let common = [
            MEM_RESERVE,
            MEM_COMMIT,
            MEM_RESERVE | MEM_COMMIT,
            MEM_RESERVE | MEM_COMMIT,
            MEM_RESET,
            MEM_RESET_UNDO,
            MEM_RESERVE | MEM_TOP_DOWN,
            MEM_RESERVE | MEM_WRITE_WATCH,
            MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH,
            MEM_RESERVE | MEM_PHYSICAL,
            MEM_RESERVE | MEM_COMMIT | MEM_LARGE_PAGES,
            MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
            MEM_RESERVE | MEM_REPLACE_PLACEHOLDER,
            MEM_RESERVE | MEM_COMMIT | MEM_REPLACE_PLACEHOLDER,
            MEM_COMMIT | MEM_TOP_DOWN,
        ];
        match b.u8() % 8 {
            0..=4 => b.pick(&common),
            5 => 1u32 << (b.u8() % 32),
            6 => b.pick(&common) | (1u32 << (b.u8() % 32)),
            _ => b.u32(),
        }
    }

    fn handle(&self, b: &mut Bytes, null_ok: bool) -> HANDLE {
        match b.u8() % 8 {
            0 => null_mut(),
            1 => 1 as HANDLE,
            2 => 0x1234 as HANDLE,
            _ if null_ok && b.u8() % 2 == 0 => null_mut(),
            _ => GetCurrentProcess(),
        }
    }

    // -------------------------------------------------------------------------------------
    // One step
    // -------------------------------------------------------------------------------------

    fn step(&mut self, b: &mut Bytes, stack: usize, before: State) -> State {
        let sel = b.u8();
        let op = sel % 20;
        let mut effects: Vec<Effect> = Vec::new();
        let out = match op {
            // Sections (sel 200..=255; below, the virtual-memory calls as before).
            _ if sel >= 200 => {
                let k = b.u8() % 12;
                if k < 3 {
                    // A read or write through a view (may make a private copy).
                    self.sec_touch(b, &before);
                    let now = state();
                    self.check_bookkeeping(&now);
                    self.check_shared(&now);
                    return now;
                }
                let out = self.op_section(k, b, &before, stack, &mut effects);
                if out.as_ref().is_some_and(|o| o.ok) {
                    self.stats.section_successes += 1;
                }
                out
            }
            0..=3 => self.op_alloc(b, &before, stack, &mut effects),
            4 => self.op_alloc2(b, &before, stack, &mut effects),
            5 | 6 => self.op_free(b, &before, stack, &mut effects),
            7 | 8 => self.op_protect(b, &before, stack, &mut effects),
            9 => self.op_query(b, &before, stack),
            10 => self.op_lock(b, &before, stack),
            11 => self.op_watch(b, &before, stack, &mut effects),
            12..=14 => {
                // A touch may consume a guard page or record a write: look again.
                self.op_touch(b, &before);
                let now = state();
                self.check_bookkeeping(&now);
                return now;
            }
            15 | 16 => self.op_awe(b, &before, stack, &mut effects),
            17 => self.op_misc(b, &before, stack, &mut effects),
            18 => {
                self.signal_mode = b.u8() % 2 == 0;
                virtmem::set_write_watch_mode(if self.signal_mode {
                    WatchKind::Signal
                } else {
                    WatchKind::Kernel
                });
                self.log
                    .0
                    .push(format!("write-watch mode signal={}", self.signal_mode));
                None
            }
            _ => return self.heap_step(b, stack, before),
        };
        let Some(out) = out else {
            return before;
        };
        self.stats.calls += 1;
        let after = state();
        self.check_call(&out, &before, &after, &effects);
        after
    }

    /// Runs `f` with the sentinel last error; returns whether it succeeded and the code.
    fn call(&mut self, what: String, ok: impl FnOnce() -> bool) -> (bool, u32) {
        if trace() {
            eprintln!("  {what}");
        }
        self.log.0.push(what);
        SetLastError(SENTINEL);
        let r = catch_unwind(AssertUnwindSafe(ok));
        let ok = match r {
            Ok(ok) => ok,
            Err(_) => panic!("{}: a panic crossed the API", self.log),
        };
        let code = GetLastError();
        if ok {
            self.stats.successes += 1;
        } else {
            self.stats.failed_calls += 1;
            self.log
                .0
                .last_mut()
                .unwrap()
                .push_str(&format!(" -> {code}"));
            if trace() {
                eprintln!("    -> {code}");
            }
        }
        (ok, code)
    }

    fn op_alloc(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
        fx: &mut Vec<Effect>,
    ) -> Option<Outcome> {
        let addr = self.addr(b, st, stack);
        let size = self.size(b, addr, st);
        let t = self.alloc_type(b);
        let prot = self.prot(b);
        let flavor = b.u8() % 5;
        if t & MEM_COMMIT != 0 && !self.commit_is_safe(st, addr, size) {
            return None;
        }
        if addr != 0 && self.heap_range(st, addr, size) {
            return None;
        }
        if !self.watch_is_safe(t, size) {
            return None;
        }
        if t & MEM_COMMIT != 0 && self.big_view_commit(addr, size) {
            return None;
        }
        let mut ret = 0usize;
        let (ok, code) = self.call(
            format!("VirtualAlloc#{flavor}({addr:#x}, {size:#x}, {t:#x}, {prot:#x})"),
            || {
                // SAFETY: hostile values are the point; virtmem validates them.
                let p = unsafe {
                    match flavor {
                        0 | 1 => VirtualAlloc(addr as _, size, t, prot),
                        2 => VirtualAllocEx(GetCurrentProcess(), addr as _, size, t, prot),
                        3 => VirtualAllocFromApp(addr as _, size, t, prot),
                        _ => VirtualAllocExNuma(GetCurrentProcess(), addr as _, size, t, prot, 7),
                    }
                };
                ret = p as usize;
                !p.is_null()
            },
        );
        if ok && flavor == 3 && prot & 0xF0 != 0 {
            panic!(
                "{}: VirtualAllocFromApp accepted an executable protection",
                self.log
            );
        }
        fx.push(Effect::Alloc {
            addr,
            size,
            t,
            prot,
            ret,
        });
        Some(Outcome {
            ok,
            code,
            partial_ok: t == MEM_RESET_UNDO && code == 999,
        })
    }

    /// A MEM_COMMIT that would commit more than 1 GiB of writable memory is skipped (the
    /// machine's memory is not what is being tested; rejected ones are still tried).
    fn commit_is_safe(&self, _st: &State, _addr: usize, size: usize) -> bool {
        size <= 1 << 30 || size > self.env.max_address
    }

    /// Kernel write tracking write-protects the whole range at once, which costs page tables
    /// (1/512 of the range, even unpopulated): a watched reservation of 64 TiB exhausts the
    /// machine (reported as a library bug). Watched requests that could succeed stay at
    /// most 4 GiB.
    fn watch_is_safe(&self, t: u32, size: usize) -> bool {
        t & MEM_WRITE_WATCH == 0 || size <= 4 << 30 || size > self.env.max_address
    }

    fn op_alloc2(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
        fx: &mut Vec<Effect>,
    ) -> Option<Outcome> {
        let process = self.handle(b, true);
        let addr = if b.u8() % 3 == 0 {
            0
        } else {
            self.addr(b, st, stack)
        };
        let size = self.size(b, addr, st);
        let t = self.alloc_type(b);
        let prot = if t & MEM_RESERVE_PLACEHOLDER != 0 && b.u8() % 4 != 0 {
            PAGE_NOACCESS
        } else {
            self.prot(b)
        };
        if t & MEM_COMMIT != 0 && !self.commit_is_safe(st, addr, size) {
            return None;
        }
        if !self.watch_is_safe(t, size) {
            return None;
        }
        if addr != 0 && self.heap_range(st, addr, size) {
            return None;
        }
        let from_app = b.u8() % 3 == 0;
        let m = self.env.max_address;
        let mut req = MEM_ADDRESS_REQUIREMENTS {
            LowestStartingAddress: b.pick(&[0, G, 0x1000, self.env.arena, self.env.arena + 3])
                as *mut c_void,
            HighestEndingAddress: b.pick(&[
                0,
                m,
                self.env.arena + 64 * G - 1,
                self.env.arena + 64 * G,
                0xFFFF,
                usize::MAX,
            ]) as *mut c_void,
            Alignment: b.pick(&[0, G, 2 * G, 1 << 30, 3 * G, P, 1 << 63]),
        };
        let mut params = [MEM_EXTENDED_PARAMETER::default(); 3];
        let n = (b.u8() % 4) as usize;
        for p in params.iter_mut().take(n) {
            let ty = b.pick(&[1u64, 1, 2, 0, 3, 5, 7, 0xFF, 0x101]);
            p.Anonymous1._bitfield = ty;
            if ty & 0xFF == 1 {
                p.Anonymous2.Pointer = if b.u8() % 8 == 0 {
                    null_mut()
                } else {
                    &mut req as *mut _ as *mut c_void
                };
            } else {
                p.Anonymous2.ULong64 = b.u8() as u64;
            }
        }
        let (ptr, count) = match b.u8() % 8 {
            0 => (null_mut(), b.pick(&[0u32, 1, u32::MAX])),
            1 => (params.as_mut_ptr(), 0),
            _ => (params.as_mut_ptr(), n as u32),
        };
        let mut ret = 0usize;
        let (ok, code) = self.call(
            format!(
                "VirtualAlloc2(fromapp={from_app}, {process:?}, {addr:#x}, {size:#x}, {t:#x}, {prot:#x}, {n} params/{count})"
            ),
            || {
                // SAFETY: `ptr` holds at least `count` parameters, or is NULL.
                let p = unsafe {
                    if from_app {
                        VirtualAlloc2FromApp(process, addr as _, size, t, prot, ptr, count)
                    } else {
                        VirtualAlloc2(process, addr as _, size, t, prot, ptr, count)
                    }
                };
                ret = p as usize;
                !p.is_null()
            },
        );
        if ok && from_app && prot & 0xF0 != 0 {
            panic!(
                "{}: VirtualAlloc2FromApp accepted an executable protection",
                self.log
            );
        }
        fx.push(Effect::Alloc {
            addr,
            size,
            t,
            prot,
            ret,
        });
        Some(Outcome {
            ok,
            code,
            partial_ok: false,
        })
    }

    fn op_free(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
        fx: &mut Vec<Effect>,
    ) -> Option<Outcome> {
        let addr = self.addr(b, st, stack);
        let size = if b.u8() % 3 == 0 {
            0
        } else {
            self.size(b, addr, st)
        };
        let t = match b.u8() % 8 {
            0..=2 => MEM_RELEASE,
            3 | 4 => MEM_DECOMMIT,
            5 => b.pick(&[
                MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER,
                MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS,
                MEM_DECOMMIT | MEM_RELEASE,
                MEM_DECOMMIT | MEM_PRESERVE_PLACEHOLDER,
                0,
            ]),
            6 => 1u32 << (b.u8() % 32),
            _ => b.u32(),
        };
        let ex = b.u8() % 4 == 0;
        let h = if ex {
            self.handle(b, false)
        } else {
            null_mut()
        };
        if self.heap_range(st, addr, size) {
            return None;
        }
        let (ok, code) = self.call(
            format!("VirtualFree(ex={ex}, {addr:#x}, {size:#x}, {t:#x})"),
            || {
                // SAFETY: virtmem validates the range; it never frees memory it did not allocate.
                unsafe {
                    if ex {
                        VirtualFreeEx(h, addr as _, size, t) != 0
                    } else {
                        VirtualFree(addr as _, size, t) != 0
                    }
                }
            },
        );
        fx.push(Effect::Free { addr, size, t });
        Some(Outcome {
            ok,
            code,
            partial_ok: false,
        })
    }

    fn out_u32(&mut self, b: &mut Bytes) -> *mut u32 {
        match b.u8() % 6 {
            0 => null_mut(),
            1 => (self.outbuf.as_mut_ptr() as usize + 1) as *mut u32,
            2 => (self.outbuf.as_mut_ptr() as usize + 2) as *mut u32,
            _ => self.outbuf.as_mut_ptr() as *mut u32,
        }
    }

    fn op_protect(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
        fx: &mut Vec<Effect>,
    ) -> Option<Outcome> {
        let addr = self.addr(b, st, stack);
        let size = self.size(b, addr, st);
        let mut prot = self.prot(b);
        let flavor = b.u8() % 3;
        let old = self.out_u32(b);
        // Memory virtmem did not allocate: VirtualProtect really changes it (as on Windows).
        // Only the canaries may change; elsewhere, only requests that change nothing (the
        // current protection, or an invalid value) are made. A range starting in one of our
        // allocations or in free memory is refused by virtmem before any change.
        let s = addr & !(P - 1);
        let end = addr.saturating_add(size);
        let mapped = {
            let i = st.maps.partition_point(|v| v.end <= s);
            st.maps.get(i).is_some_and(|v| v.start <= s)
        };
        if self.ours(st, s).is_none() && mapped {
            if let Some(&c) = self
                .env
                .canaries
                .iter()
                .find(|&&c| s >= c && s < c + CANARY_PAGES * P)
            {
                if end > c + CANARY_PAGES * P {
                    return None;
                }
            } else if virtmem::sim::check_protection(prot, false).is_ok() {
                match query(addr) {
                    Some(r) if r.state == MEM_COMMIT && end <= r.base + r.size => prot = r.protect,
                    _ => return None,
                }
            }
        }
        if self.heap_range(st, addr, size) {
            return None;
        }
        let pre = query(addr);
        let (ok, code) = self.call(
            format!("VirtualProtect#{flavor}({addr:#x}, {size:#x}, {prot:#x}, old={old:?})"),
            || {
                // SAFETY: `old` is NULL or points into the harness's buffer (maybe misaligned).
                unsafe {
                    match flavor {
                        0 => VirtualProtect(addr as _, size, prot, old) != 0,
                        1 => VirtualProtectEx(GetCurrentProcess(), addr as _, size, prot, old) != 0,
                        _ => VirtualProtectFromApp(addr as _, size, prot, old) != 0,
                    }
                }
            },
        );
        if ok {
            // SAFETY: written by VirtualProtect (maybe misaligned).
            let got = unsafe { old.read_unaligned() };
            if let Some(r) = pre {
                assert_eq!(got, r.protect, "{}: lpflOldProtect", self.log);
            }
        }
        fx.push(Effect::Protect { addr, size, prot });
        Some(Outcome {
            ok,
            code,
            partial_ok: false,
        })
    }

    fn is_canary(&self, a: usize) -> bool {
        self.env
            .canaries
            .iter()
            .any(|&c| a >= c && a < c + CANARY_PAGES * P)
    }

    fn op_query(&mut self, b: &mut Bytes, st: &State, stack: usize) -> Option<Outcome> {
        let addr = self.addr(b, st, stack);
        let mbi = size_of::<MEMORY_BASIC_INFORMATION>();
        let len = b.pick(&[mbi, mbi, mbi + 8, mbi - 1, 0, 1, usize::MAX]);
        let buf: *mut MEMORY_BASIC_INFORMATION = match b.u8() % 5 {
            0 => null_mut(),
            1 => (self.outbuf.as_mut_ptr() as usize + 3) as *mut _,
            _ => self.outbuf.as_mut_ptr() as *mut _,
        };
        let ex = b.u8() % 4 == 0;
        let h = if ex {
            self.handle(b, false)
        } else {
            null_mut()
        };
        let mut n = 0;
        let (ok, code) = self.call(
            format!("VirtualQuery(ex={ex}, {addr:#x}, {buf:?}, {len})"),
            || {
                // SAFETY: `buf` is NULL or points into the harness's buffer, big enough.
                n = unsafe {
                    if ex {
                        VirtualQueryEx(h, addr as _, buf, len)
                    } else {
                        VirtualQuery(addr as _, buf, len)
                    }
                };
                n != 0
            },
        );
        if ok {
            assert_eq!(n, mbi, "{}: VirtualQuery's return", self.log);
        }
        Some(Outcome {
            ok,
            code,
            partial_ok: false,
        })
    }

    fn op_lock(&mut self, b: &mut Bytes, st: &State, stack: usize) -> Option<Outcome> {
        let addr = self.addr(b, st, stack);
        let size = self.size(b, addr, st);
        let unlock = b.u8() % 3 == 0;
        let end = addr.checked_add(size);
        // Locking really pins memory: a range that could succeed stays small.
        if !unlock && size > 64 * P && end.is_some_and(|e| e <= self.env.max_address + 1) {
            return None;
        }
        if self.ours(st, addr).is_none() && size <= 64 * P && !unlock {
            self.foreign_locked.push((addr, size));
        }
        let ex = unlock && b.u8() % 2 == 0;
        let (ok, code) = self.call(
            format!(
                "Virtual{}(ex={ex}, {addr:#x}, {size:#x})",
                if unlock { "Unlock" } else { "Lock" }
            ),
            || {
                // SAFETY: locking and unlocking never change contents.
                unsafe {
                    if !unlock {
                        VirtualLock(addr as _, size) != 0
                    } else if ex {
                        VirtualUnlockEx(GetCurrentProcess(), addr as _, size) != 0
                    } else {
                        VirtualUnlock(addr as _, size) != 0
                    }
                }
            },
        );
        if ok && !unlock {
            // Locking touches writable pages for writing: write watch counts them (case 114),
            // harmless for the check (over-reporting is allowed).
        }
        Some(Outcome {
            ok,
            code,
            partial_ok: code == 0x8000_0001,
        })
    }

    fn op_watch(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
        fx: &mut Vec<Effect>,
    ) -> Option<Outcome> {
        let addr = self.addr(b, st, stack);
        let size = self.size(b, addr, st);
        if b.u8() % 3 == 0 {
            let (ok, code) = self.call(format!("ResetWriteWatch({addr:#x}, {size:#x})"), || {
                // SAFETY: plain values.
                unsafe { ResetWriteWatch(addr as _, size) == 0 }
            });
            fx.push(Effect::ResetWatch { addr, size });
            return Some(Outcome {
                ok,
                code,
                partial_ok: false,
            });
        }
        let flags = b.pick(&[
            0,
            0,
            WRITE_WATCH_FLAG_RESET,
            WRITE_WATCH_FLAG_RESET,
            2,
            u32::MAX,
        ]);
        let max = b.pick(&[0usize, 1, 2, 7, 512, 512, 512, usize::MAX]);
        let cap = max.min(512);
        let mut count = max;
        let mut gran = 0u32;
        let mut arr = vec![null_mut::<c_void>(); 513];
        let arr_ptr = match b.u8() % 6 {
            0 => null_mut(),
            1 => (arr.as_mut_ptr() as usize + 4) as *mut *mut c_void,
            _ => arr.as_mut_ptr(),
        };
        let misaligned_count = (self.outbuf.as_mut_ptr() as usize + 1) as *mut usize;
        let count_ptr: *mut usize = match b.u8() % 8 {
            0 => null_mut(),
            1 => misaligned_count,
            _ => &mut count,
        };
        // SAFETY: inside the harness's buffer.
        unsafe { misaligned_count.write_unaligned(max) };
        let gran_ptr: *mut u32 = if b.u8() % 8 == 0 {
            null_mut()
        } else {
            &mut gran
        };
        if max > cap && !arr_ptr.is_null() && !count_ptr.is_null() && !gran_ptr.is_null() {
            // The array holds 512 entries: a larger count is honest only for a region
            // that cannot have more pages.
            if size / P + 2 > 512 {
                return None;
            }
        }
        let (ok, code) = self.call(
            format!("GetWriteWatch({flags:#x}, {addr:#x}, {size:#x}, max={max})"),
            || {
                // SAFETY: the array holds 513 entries (max above 512 only for small regions).
                unsafe { GetWriteWatch(flags, addr as _, size, arr_ptr, count_ptr, gran_ptr) == 0 }
            },
        );
        if count_ptr == misaligned_count {
            // SAFETY: as above.
            count = unsafe { misaligned_count.read_unaligned() };
        }
        if ok {
            assert_eq!(gran as usize, P, "{}: granularity", self.log);
            assert!(count <= max, "{}: more pages than asked", self.log);
            // SAFETY: GetWriteWatch wrote `count` entries (maybe misaligned).
            let got: BTreeSet<usize> = (0..count)
                .map(|i| unsafe { arr_ptr.add(i).read_unaligned() } as usize)
                .collect();
            let (s, e) = (addr & !(P - 1), (addr + size + P - 1) & !(P - 1));
            for &g in &got {
                assert!(
                    g >= s && g < e && g % P == 0,
                    "{}: reported page {g:#x} outside",
                    self.log
                );
            }
            if count < max {
                for &d in self.dirty.range(s..e) {
                    assert!(
                        got.contains(&d),
                        "{}: written page {d:#x} not reported by GetWriteWatch ({got:x?})",
                        self.log
                    );
                }
            }
            if flags & WRITE_WATCH_FLAG_RESET != 0 {
                for g in &got {
                    self.dirty.remove(g);
                }
            }
        }
        Some(Outcome {
            ok,
            code,
            partial_ok: false,
        })
    }

    /// Reads or writes a page of one of our allocations as VirtualQuery allows.
    fn op_touch(&mut self, b: &mut Bytes, st: &State) {
        let mine = self.mine(st);
        if mine.is_empty() {
            return;
        }
        let a = *mine[b.u8() as usize % mine.len()];
        let pg = a.0 + (b.u16() as usize % (a.1 / P)) * P;
        let Some(r) = query(pg) else { return };
        if r.state != MEM_COMMIT {
            return;
        }
        let write = b.u8() % 3 != 0;
        let value = b.u64() | 1;
        if r.kind == MEM_MAPPED {
            self.touch_view(pg, write, value);
            return;
        }
        let guarded = r.protect & PAGE_GUARD != 0;
        let kind = self.kinds.get(&a.2).copied();
        if write && writable(r.protect) {
            self.log
                .0
                .push(format!("write {value:#x} at {pg:#x} ({:#x})", r.protect));
            if trace() {
                eprintln!("  {}", self.log.0.last().unwrap());
            }
            // SAFETY: committed and writable (a guard page raises a violation, which the
            // harness's handler continues).
            unsafe {
                (pg as *mut u64).write_volatile(value);
                ((pg + P - 8) as *mut u64).write_volatile(value);
            }
            if kind.is_some_and(|k| k.1) {
                self.dirty.insert(pg);
            }
            if kind.is_some_and(|k| k.0 == Kind::Awe) {
                self.data.remove(&pg);
            } else {
                self.data.insert(pg, Data::Known(value));
            }
        } else if readable(r.protect) || (guarded && readable(r.protect & !PAGE_GUARD)) {
            self.log
                .0
                .push(format!("read at {pg:#x} ({:#x})", r.protect));
            if trace() {
                eprintln!("  {}", self.log.0.last().unwrap());
            }
            // SAFETY: committed and readable.
            let v = unsafe { (pg as *const u64).read_volatile() };
            self.check_data(pg, v);
        }
    }

    fn check_data(&self, pg: usize, v: u64) {
        match self.data.get(&pg) {
            Some(Data::Known(x)) => assert_eq!(v, *x, "{}: data at {pg:#x}", self.log),
            Some(Data::Either(x)) => {
                assert!(
                    v == *x || v == 0,
                    "{}: data at {pg:#x} after MEM_RESET",
                    self.log
                )
            }
            None => {}
        }
    }

    fn op_awe(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
        fx: &mut Vec<Effect>,
    ) -> Option<Outcome> {
        let what = b.u8() % 5;
        let frame = |b: &mut Bytes, fr: &[usize]| -> usize {
            match b.u8() % 6 {
                0 => 0,
                1 => b.u64() as usize,
                _ if !fr.is_empty() => fr[b.u8() as usize % fr.len()],
                _ => 1,
            }
        };
        fx.push(Effect::Awe);
        let (ok, code, partial_ok) = match what {
            0 => {
                let n = b.pick(&[
                    1usize,
                    2,
                    4,
                    16,
                    0,
                    usize::MAX,
                    1 << 40,
                    1 << 52,
                    usize::MAX / 8,
                ]);
                let mut k = n;
                let mut arr = vec![0usize; 16];
                if n > 16 && n < 1 << 30 {
                    return None;
                }
                let (ok, code) = self.call(format!("AllocateUserPhysicalPages({n})"), || {
                    // SAFETY: the array has 16 entries; larger counts must fail before any
                    // is written (they exceed any machine's memory).
                    unsafe {
                        AllocateUserPhysicalPages(GetCurrentProcess(), &mut k, arr.as_mut_ptr())
                            != 0
                    }
                });
                if ok {
                    assert!(k <= n.min(16), "{}: {k} pages", self.log);
                    self.frames.extend_from_slice(&arr[..k]);
                }
                (ok, code, false)
            }
            1 => {
                let addr = self.addr(b, st, stack);
                let n = b.pick(&[
                    1usize,
                    1,
                    2,
                    4,
                    0,
                    1 << 40,
                    usize::MAX,
                    isize::MAX as usize / 8 + 1,
                ]);
                let nulls = b.u8() % 4 == 0;
                let fr: Vec<usize> = (0..n.min(8)).map(|_| frame(b, &self.frames)).collect();
                let mut arr = fr.clone();
                arr.resize(8, 0);
                if n > 8 && n < 1 << 30 {
                    return None;
                }
                let (ok, code) = self.call(
                    format!(
                        "MapUserPhysicalPages({addr:#x}, {n}, {:x?})",
                        if nulls { None } else { Some(&fr) }
                    ),
                    || {
                        // SAFETY: 8 frames; larger counts must fail on the range first.
                        unsafe {
                            MapUserPhysicalPages(
                                addr as _,
                                n,
                                if nulls { null() } else { arr.as_ptr() },
                            ) != 0
                        }
                    },
                );
                (ok, code, false)
            }
            2 => {
                let n = (b.u8() % 4) as usize;
                let addrs: Vec<*const c_void> = (0..n)
                    .map(|_| self.addr(b, st, stack) as *const c_void)
                    .collect();
                let fr: Vec<usize> = (0..n).map(|_| frame(b, &self.frames)).collect();
                let nulls = b.u8() % 4 == 0;
                let (ok, code) = self.call(
                    format!("MapUserPhysicalPagesScatter({addrs:?}, {fr:x?})"),
                    || {
                        // SAFETY: both arrays hold n entries.
                        unsafe {
                            MapUserPhysicalPagesScatter(
                                addrs.as_ptr(),
                                n,
                                if nulls { null() } else { fr.as_ptr() },
                            ) != 0
                        }
                    },
                );
                (ok, code, false)
            }
            3 => {
                let n = (b.u8() % 4) as usize;
                let fr: Vec<usize> = (0..n).map(|_| frame(b, &self.frames)).collect();
                let mut k = n;
                let (ok, code) = self.call(format!("FreeUserPhysicalPages({fr:x?})"), || {
                    // SAFETY: n frames.
                    unsafe { FreeUserPhysicalPages(GetCurrentProcess(), &mut k, fr.as_ptr()) != 0 }
                });
                assert!(k <= n, "{}: freed count", self.log);
                for f in &fr[..k] {
                    if let Some(i) = self.frames.iter().position(|x| x == f) {
                        self.frames.swap_remove(i);
                    }
                }
                (ok, code, !ok)
            }
            _ => {
                let mut k = b.pick(&[usize::MAX, usize::MAX / 4, isize::MAX as usize / 4 + 1]);
                let (ok, code) = self.call(format!("FreeUserPhysicalPages(count={k:#x})"), || {
                    let one = [0usize; 1];
                    // SAFETY: a hostile count with a one-entry array: must fail on the first.
                    unsafe { FreeUserPhysicalPages(GetCurrentProcess(), &mut k, one.as_ptr()) != 0 }
                });
                (ok, code, true)
            }
        };
        Some(Outcome {
            ok,
            code,
            partial_ok,
        })
    }

    fn op_misc(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
        fx: &mut Vec<Effect>,
    ) -> Option<Outcome> {
        let addr = self.addr(b, st, stack);
        let size = self.size(b, addr, st);
        let what = b.u8() % 5;
        if what < 3 && self.heap_range(st, addr, size) {
            return None;
        }
        match what {
            0 | 1 => {
                let offer = b.u8() % 2 == 0;
                let mut r = 0;
                let (ok, code) = self.call(format!("Discard/Offer({addr:#x}, {size:#x})"), || {
                    // SAFETY: virtmem validates the range.
                    r = unsafe {
                        if offer {
                            OfferVirtualMemory(addr as _, size, 1)
                        } else {
                            DiscardVirtualMemory(addr as _, size)
                        }
                    };
                    r == 0
                });
                let _ = code;
                assert_ne!(r, ERROR_INTERNAL_ERROR, "{}: panic inside", self.log);
                assert!(r == 0 || KNOWN_CODES.contains(&r), "{}: code {r}", self.log);
                fx.push(Effect::Alloc {
                    addr,
                    size,
                    t: MEM_RESET,
                    prot: PAGE_NOACCESS,
                    ret: addr,
                });
                // These return the code (and need not set the last error).
                Some(Outcome {
                    ok,
                    code: r,
                    partial_ok: false,
                })
            }
            2 => {
                let mut r = 0;
                let _ = self.call(
                    format!("ReclaimVirtualMemory({addr:#x}, {size:#x})"),
                    || {
                        // SAFETY: virtmem validates the range.
                        r = unsafe { ReclaimVirtualMemory(addr as _, size) };
                        r == 0
                    },
                );
                assert_ne!(r, ERROR_INTERNAL_ERROR, "{}: panic inside", self.log);
                assert!(
                    r == 0 || r == 170 || KNOWN_CODES.contains(&r),
                    "{}: code {r}",
                    self.log
                );
                fx.push(Effect::Alloc {
                    addr,
                    size,
                    t: MEM_RESET_UNDO,
                    prot: PAGE_NOACCESS,
                    ret: addr,
                });
                Some(Outcome {
                    ok: r == 0,
                    code: r,
                    partial_ok: r == 170 || r == 999,
                })
            }
            3 => {
                let e = WIN32_MEMORY_RANGE_ENTRY {
                    VirtualAddress: addr as *mut c_void,
                    NumberOfBytes: size,
                };
                let n = b.pick(&[0usize, 1, 1]);
                let flags = b.pick(&[0u32, 0, 1]);
                let (ok, code) = self.call(format!("PrefetchVirtualMemory({n}, {flags})"), || {
                    // SAFETY: one entry.
                    unsafe { PrefetchVirtualMemory(GetCurrentProcess(), n, &e, flags) != 0 }
                });
                Some(Outcome {
                    ok,
                    code,
                    partial_ok: false,
                })
            }
            _ => {
                let mut si = SYSTEM_INFO::default();
                self.log.0.push("GetSystemInfo".into());
                // SAFETY: a valid out-pointer.
                unsafe { GetSystemInfo(&mut si) };
                assert_eq!(si.dwPageSize as usize, P);
                // SAFETY: no memory is changed.
                let r = unsafe { FlushInstructionCache(GetCurrentProcess(), addr as _, size) };
                let _ = r;
                None
            }
        }
    }

    // -------------------------------------------------------------------------------------
    // Sections and views
    // -------------------------------------------------------------------------------------

    /// A handle value: one of ours (open or closed), or a hostile one.
    fn pick_handle(&self, b: &mut Bytes) -> usize {
        let h = &self.sec.handles;
        match b.u8() % 10 {
            0..=7 if !h.is_empty() => *h.keys().nth(b.u8() as usize % h.len()).unwrap(),
            8 if !self.sec.seen.is_empty() => self.sec.seen[b.u8() as usize % self.sec.seen.len()],
            _ => b.pick(&[
                0usize,
                usize::MAX, // GetCurrentProcess()
                1,
                2,
                4,
                8,
                0x1234,
                0xFFFF_FFFC,
                usize::MAX - 3,
                1 << 40,
            ]),
        }
    }

    /// A view of this input (base, record), if any.
    fn pick_view(&self, b: &mut Bytes) -> Option<(usize, ViewRec)> {
        let v = &self.sec.views;
        if v.is_empty() {
            return None;
        }
        let (base, r) = v.iter().nth(b.u8() as usize % v.len()).unwrap();
        Some((*base, *r))
    }

    /// Whether `[addr, addr+size)` touches a view: commits there really allocate memory
    /// (fallocate), so large ones are not made.
    fn big_view_commit(&self, addr: usize, size: usize) -> bool {
        size > 16 << 20
            && self
                .sec
                .views
                .iter()
                .any(|(&b, v)| addr < b + v.len && addr.saturating_add(size) > b)
    }

    fn op_section(
        &mut self,
        k: u8,
        b: &mut Bytes,
        st: &State,
        stack: usize,
        fx: &mut Vec<Effect>,
    ) -> Option<Outcome> {
        // Calls that need a section or a view make one first now and then, so that inputs
        // reach views (hostile handles and addresses still come often enough).
        let k = match k {
            5..=7 if self.sec.handles.is_empty() && b.u8() % 4 != 0 => 3,
            8..=10 if self.sec.views.is_empty() && b.u8() % 4 != 0 => 6,
            k => k,
        };
        match k {
            3 | 4 => self.sec_create(b),
            5 => self.sec_dup_close_open(b),
            6 | 7 => self.sec_map(b, st, stack, fx),
            8 => self.sec_unmap(b, st, stack, fx),
            9 | 10 => self.sec_commit_protect(b, fx),
            _ => {
                // FlushViewOfFile: anywhere, any size.
                let addr = match self.pick_view(b) {
                    Some((base, v)) if b.u8() % 2 == 0 => base + (b.u16() as usize % v.len),
                    _ => self.addr(b, st, stack),
                };
                let size = if b.u8() % 2 == 0 {
                    0
                } else {
                    self.size(b, addr, st)
                };
                let (ok, code) =
                    self.call(format!("FlushViewOfFile({addr:#x}, {size:#x})"), || {
                        // SAFETY: flushing changes no mapping or contents.
                        unsafe { FlushViewOfFile(addr as _, size) != 0 }
                    });
                Some(Outcome {
                    ok,
                    code,
                    partial_ok: false,
                })
            }
        }
    }

    fn sec_create(&mut self, b: &mut Bytes) -> Option<Outcome> {
        let hfile: HANDLE = match b.u8() % 8 {
            0 => null_mut(),
            1 => self.pick_handle(b) as HANDLE, // a section (wrong kind) or no handle: 6
            _ => INVALID_HANDLE_VALUE,
        };
        let prot = match b.u8() % 8 {
            0 => self.prot(b),
            _ => b.pick(&[
                PAGE_READWRITE,
                PAGE_READWRITE,
                PAGE_READONLY,
                PAGE_WRITECOPY,
                PAGE_EXECUTE_READ,
                PAGE_EXECUTE_READWRITE,
                PAGE_EXECUTE_WRITECOPY,
            ]),
        };
        let sec = match b.u8() % 16 {
            0..=13 => b.pick(&[
                0,
                SEC_COMMIT,
                SEC_RESERVE,
                SEC_RESERVE,
                SEC_COMMIT | SEC_NOCACHE,
                SEC_RESERVE | SEC_WRITECOMBINE,
            ]),
            14 => b.pick(&[
                SEC_COMMIT | SEC_RESERVE,
                SEC_IMAGE,
                SEC_IMAGE | SEC_NOCACHE,
                SEC_FILE,
                SEC_LARGE_PAGES,
                SEC_COMMIT | SEC_LARGE_PAGES,
                SEC_NOCACHE,
                SEC_NOCACHE | SEC_WRITECOMBINE | SEC_COMMIT,
            ]),
            _ => 1u32 << (b.u8() % 32),
        };
        let mut size: u64 = match b.u8() % 12 {
            0..=7 => (b.u8() as u64 % 16 + 1) * P as u64 + u64::from(b.u8() % 3 == 0),
            8 => b.pick(&[
                0,
                1,
                G as u64,
                3 * G as u64 + 5,
                1 << 32,
                (1 << 32) + 1,
                1 << 40,
                u64::MAX,
                u64::MAX - P as u64 + 2,
                1 << 63,
            ]),
            9 => b.u16() as u64,
            10 if self.env.large > 0 => (self.env.large * (b.u8() as usize % 2 + 1)) as u64,
            _ => b.u64(),
        };
        // A section can be huge and still succeed (memfds are sparse), but VirtualQuery of a
        // copy-on-write view asks the kernel about each of its pages (pagemap): 256 MiB at
        // most when it could succeed, so every check stays cheap.
        if size > 1 << 28 && size <= isize::MAX as u64 {
            size = 1 << 28;
        }
        let api = b.u8() % 4;
        let named = b.u8() % 16 == 0;
        let name: Vec<u16> = "Local\\virtmem-fuzz-section\0".encode_utf16().collect();
        let name_ptr = if named {
            name.as_ptr()
        } else {
            std::ptr::null()
        };
        let access = b.pick(&[
            FILE_MAP_ALL_ACCESS,
            FILE_MAP_READ,
            FILE_MAP_WRITE,
            0,
            u32::MAX,
        ]);
        let mut h = 0usize;
        let (ok, code) = self.call(
            format!(
                "CreateFileMapping#{api}({hfile:?}, {prot:#x}|{sec:#x}, {size:#x}, named {named})"
            ),
            || {
                // SAFETY: plain values; the name is NUL-terminated.
                h = unsafe {
                    match api {
                        0 | 1 => CreateFileMappingW(
                            hfile,
                            null(),
                            prot | sec,
                            (size >> 32) as u32,
                            size as u32,
                            name_ptr,
                        ),
                        2 => CreateFileMappingFromApp(hfile, null(), prot | sec, size, name_ptr),
                        _ => CreateFileMapping2(
                            hfile,
                            null(),
                            access,
                            prot,
                            sec,
                            size,
                            name_ptr,
                            null_mut(),
                            0,
                        ),
                    }
                } as usize;
                h != 0
            },
        );
        if ok {
            // CF8: the last error is set on success too: 0, or 183 for a name in use.
            assert!(
                code == 0 || code == 183,
                "{}: CreateFileMapping succeeded with last error {code}",
                self.log
            );
            self.new_handle(h, None);
            let id = self.sec.handles[&h];
            self.sec
                .sizes
                .insert(id, size.div_ceil(P as u64) * P as u64);
        }
        Some(Outcome {
            ok,
            code,
            partial_ok: false,
        })
    }

    /// Records a handle the library returned (for the section `sec`, or a new one).
    fn new_handle(&mut self, h: usize, sec: Option<u64>) {
        assert!(
            h != 0 && h != usize::MAX && h % 4 == 0 && !self.sec.handles.contains_key(&h),
            "{}: O5: handle {h:#x} returned",
            self.log
        );
        let id = sec.unwrap_or_else(|| {
            self.sec.next += 1;
            self.sec.next
        });
        self.sec.handles.insert(h, id);
        self.sec.seen.push(h);
    }

    fn sec_dup_close_open(&mut self, b: &mut Bytes) -> Option<Outcome> {
        match b.u8() % 4 {
            0 | 1 => {
                let src = self.pick_handle(b);
                let (p1, p2) = (self.handle(b, false), self.handle(b, false));
                let null_target = b.u8() % 8 == 0;
                let access = b.pick(&[
                    FILE_MAP_READ,
                    FILE_MAP_WRITE,
                    FILE_MAP_ALL_ACCESS,
                    0,
                    FILE_MAP_COPY,
                    u32::MAX,
                ]);
                let options = b.pick(&[
                    0u32,
                    0,
                    DUPLICATE_SAME_ACCESS,
                    DUPLICATE_CLOSE_SOURCE,
                    3,
                    4,
                    0xFF,
                ]);
                let mut out: HANDLE = null_mut();
                let (ok, code) = self.call(
                    format!("DuplicateHandle({p1:?}, {src:#x}, {p2:?}, null {null_target}, {access:#x}, {options:#x})"),
                    || {
                        // SAFETY: the target is NULL or a valid out-pointer.
                        unsafe {
                            DuplicateHandle(
                                p1,
                                src as HANDLE,
                                p2,
                                if null_target { null_mut() } else { &mut out },
                                access,
                                FALSE,
                                options,
                            ) != 0
                        }
                    },
                );
                if !ok
                    && null_target
                    && options & DUPLICATE_CLOSE_SOURCE != 0
                    && p1 == CURRENT_PROCESS
                    && p2 == CURRENT_PROCESS
                    && src != usize::MAX
                {
                    // The source is closed "regardless of any error status returned" [doc].
                    self.sec.handles.remove(&src);
                }
                if ok {
                    let sec = self.sec.handles.get(&src).copied();
                    if src == usize::MAX {
                        // Duplicating the pseudo-handle gives a real handle to this process
                        // (as on Windows); the model keeps no process handles: close it.
                        let h = out as usize;
                        assert!(
                            h != 0 && h != usize::MAX && h % 4 == 0,
                            "{}: a real process handle, got {h:#x}",
                            self.log
                        );
                        assert_eq!(unsafe { CloseHandle(out) }, TRUE, "{}", self.log);
                    } else {
                        assert!(
                            sec.is_some(),
                            "{}: duplicated a handle never opened",
                            self.log
                        );
                        if options & DUPLICATE_CLOSE_SOURCE != 0 {
                            self.sec.handles.remove(&src);
                        }
                        self.new_handle(out as usize, sec);
                    }
                }
                Some(Outcome {
                    ok,
                    code,
                    partial_ok: false,
                })
            }
            2 => {
                let h = self.pick_handle(b);
                let (ok, code) = self.call(format!("CloseHandle({h:#x})"), || {
                    // SAFETY: closing a handle value (maybe not open).
                    unsafe { CloseHandle(h as HANDLE) != 0 }
                });
                let open = self.sec.handles.contains_key(&h);
                assert!(
                    ok == (open || h == usize::MAX),
                    "{}: H1: CloseHandle({h:#x}) of {} handle returned {ok}",
                    self.log,
                    if open {
                        "an open"
                    } else {
                        "a closed or unknown"
                    }
                );
                self.sec.handles.remove(&h);
                Some(Outcome {
                    ok,
                    code,
                    partial_ok: false,
                })
            }
            _ => {
                let null_name = b.u8() % 3 == 0;
                let access = b.pick(&[FILE_MAP_READ, FILE_MAP_ALL_ACCESS, FILE_MAP_COPY, 0]);
                let name: Vec<u16> = b
                    .pick(&[
                        "Local\\virtmem-fuzz-section\0",
                        "virtmem-fuzz-none\0",
                        "Global\\a\\b\0",
                        "\0",
                    ])
                    .encode_utf16()
                    .collect();
                let mut h = 0usize;
                let (ok, code) = self.call(
                    format!("OpenFileMappingW({access:#x}, null {null_name})"),
                    || {
                        // SAFETY: NULL or a NUL-terminated name.
                        h = unsafe {
                            OpenFileMappingW(
                                access,
                                FALSE,
                                if null_name { null() } else { name.as_ptr() },
                            )
                        } as usize;
                        h != 0
                    },
                );
                if ok {
                    // A named section of this input (names are one per input).
                    let sec = self.sec.handles.values().next().copied();
                    self.new_handle(h, sec);
                }
                Some(Outcome {
                    ok,
                    code,
                    partial_ok: false,
                })
            }
        }
    }

    fn sec_map(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
        fx: &mut Vec<Effect>,
    ) -> Option<Outcome> {
        let api = b.u8() % 8;
        let h = self.pick_handle(b);
        // Half the requests are plain ones (offset 0, the whole section, the system's
        // address, one of the common accesses), so that inputs reach views.
        let plain = b.u8() % 2 == 0;
        let access = match b.u8() % 8 {
            _ if plain => b.pick(&[
                FILE_MAP_ALL_ACCESS,
                FILE_MAP_READ,
                FILE_MAP_WRITE,
                FILE_MAP_COPY,
            ]),
            0..=6 => b.pick(&[
                FILE_MAP_READ,
                FILE_MAP_WRITE,
                FILE_MAP_ALL_ACCESS,
                FILE_MAP_ALL_ACCESS,
                FILE_MAP_COPY,
                FILE_MAP_COPY,
                FILE_MAP_READ | FILE_MAP_EXECUTE,
                FILE_MAP_ALL_ACCESS | FILE_MAP_EXECUTE,
                0,
                FILE_MAP_EXECUTE,
                FILE_MAP_COPY | FILE_MAP_EXECUTE,
                FILE_MAP_LARGE_PAGES | FILE_MAP_READ,
                FILE_MAP_RESERVE | FILE_MAP_READ,
            ]),
            _ => b.u32(),
        };
        let prot = match b.u8() % 6 {
            0..=4 => b.pick(&[
                PAGE_READWRITE,
                PAGE_READWRITE,
                PAGE_READONLY,
                PAGE_WRITECOPY,
                PAGE_WRITECOPY,
                PAGE_NOACCESS,
                PAGE_EXECUTE_READ,
                PAGE_EXECUTE_READWRITE,
                PAGE_EXECUTE_WRITECOPY,
            ]),
            _ => self.prot(b),
        };
        let mut offset: u64 = match b.u8() % 8 {
            _ if plain => 0,
            0..=4 => 0,
            5 => (b.u8() as u64 % 4) * G as u64,
            6 => b.pick(&[
                P as u64,
                1,
                1 << 32,
                u64::MAX - P as u64 + 1,
                (1 << 34) - G as u64,
            ]),
            _ => b.u64(),
        };
        let mut size: usize = match b.u8() % 6 {
            _ if plain => 0,
            0..=2 => 0,
            3 => (b.u8() as usize % 16 + 1) * P - usize::from(b.u8() % 2),
            _ => self.size(b, 0, st),
        };
        let mut base: usize = match b.u8() % 6 {
            _ if plain => 0,
            0..=2 => 0,
            3 => self.env.arena + (b.u8() as usize % ARENA_GRANULES) * G,
            4 => self.env.arena + (b.u8() as usize % ARENA_GRANULES) * G + b.pick(&[P, 1, 42]),
            _ => self.addr(b, st, stack),
        };
        // MapViewOfFile3 / MapViewOfFileNuma2: into a placeholder now and then.
        let mut alloc_type = match b.u8() % 8 {
            _ if plain => 0,
            0..=3 => 0,
            4 | 5 => MEM_REPLACE_PLACEHOLDER,
            6 => b.pick(&[
                MEM_RESERVE,
                MEM_LARGE_PAGES,
                MEM_COMMIT,
                MEM_REPLACE_PLACEHOLDER | MEM_RESERVE,
            ]),
            _ => 1u32 << (b.u8() % 32),
        };
        if api >= 4 && b.u8() % 3 == 0 {
            alloc_type = MEM_REPLACE_PLACEHOLDER;
        }
        if api >= 4 && alloc_type & MEM_REPLACE_PLACEHOLDER != 0 && b.u8() % 4 != 0 {
            let phs: Vec<(usize, usize)> = self
                .mine(st)
                .into_iter()
                .filter(|a| {
                    self.kinds
                        .get(&a.2)
                        .is_some_and(|k| k.0 == Kind::Placeholder)
                })
                .map(|a| (a.0, a.1))
                .collect();
            if phs.is_empty() && b.u8() % 2 == 0 {
                // No placeholder to replace: reserve one (this step's call), so that a later
                // request finds one.
                // As large as the section, so that the whole section fits it exactly.
                let size = match self.sec.handles.get(&h).and_then(|s| self.sec.sizes.get(s)) {
                    Some(&sz) if sz <= 1 << 24 && b.u8() % 4 != 0 => sz as usize,
                    _ => (b.u8() as usize % 4 + 1) * G,
                };
                let addr = if b.u8() % 2 == 0 {
                    0
                } else {
                    self.env.arena + (b.u8() as usize % ARENA_GRANULES) * G
                };
                let t = MEM_RESERVE | MEM_RESERVE_PLACEHOLDER;
                let mut ret = 0usize;
                let (ok, code) = self.call(
                    format!("VirtualAlloc2({addr:#x}, {size:#x}, placeholder)"),
                    || {
                        // SAFETY: a new reservation; virtmem picks or checks the range.
                        ret = unsafe {
                            VirtualAlloc2(
                                GetCurrentProcess(),
                                addr as _,
                                size,
                                t,
                                PAGE_NOACCESS,
                                null_mut(),
                                0,
                            )
                        } as usize;
                        ret != 0
                    },
                );
                fx.push(Effect::Alloc {
                    addr,
                    size,
                    t,
                    prot: PAGE_NOACCESS,
                    ret,
                });
                return Some(Outcome {
                    ok,
                    code,
                    partial_ok: false,
                });
            }
            let want = self
                .sec
                .handles
                .get(&h)
                .and_then(|s| self.sec.sizes.get(s))
                .copied();
            let fit = phs.iter().find(|p| Some(p.1 as u64) == want).copied();
            let pick = match fit {
                Some(p) if b.u8() % 4 != 0 => Some(p),
                _ => phs.get(b.u8() as usize % phs.len().max(1)).copied(),
            };
            if let Some((pb, ps)) = pick {
                base = pb;
                size = if b.u8() % 4 == 0 { ps - P } else { ps };
                offset = if fit.is_some() && b.u8() % 2 == 0 {
                    0
                } else {
                    (b.u8() as u64 % 4) * P as u64
                };
            }
        }
        if api < 4 {
            alloc_type = 0;
        }
        let process = if b.u8() % 4 == 0 {
            self.handle(b, true)
        } else {
            GetCurrentProcess()
        };
        let node = b.pick(&[0xFFFF_FFFFu32, 0, 1]);
        let mut req = MEM_ADDRESS_REQUIREMENTS {
            LowestStartingAddress: null_mut(),
            // Not usize::MAX: KNOWN engine bug (tests/sections_model.rs,
            // known_map_view3_highest_address_max_is_87): `highest + 1` overflows.
            HighestEndingAddress: b.pick(&[
                0usize,
                self.env.arena + 64 * G - 1,
                0xFFFF,
                self.env.max_address,
                self.env.max_address + 1,
                usize::MAX,
            ]) as *mut c_void,
            Alignment: b.pick(&[0, G, P]),
        };
        let mut param = MEM_EXTENDED_PARAMETER::default();
        param.Anonymous1._bitfield = b.pick(&[1u64, 2, 0, 7]);
        param.Anonymous2.Pointer = &mut req as *mut _ as *mut c_void;
        let (pp, pc) = match b.u8() % 8 {
            _ if plain => (null_mut(), 0),
            0 => (&mut param as *mut MEM_EXTENDED_PARAMETER, 1),
            1 => (null_mut(), b.pick(&[1u32, u32::MAX])),
            _ => (null_mut(), 0),
        };
        let mut ret = 0usize;
        let (ok, code) = self.call(
            format!(
                "MapView#{api}({h:#x}, access {access:#x} / prot {prot:#x}, offset {offset:#x}, size {size:#x}, base {base:#x}, type {alloc_type:#x}, process {process:?}, params {pc})"
            ),
            || {
                let hh = h as HANDLE;
                let ba = base as *const c_void;
                // SAFETY: hostile values; a base address is only ever used through virtmem,
                // which maps only into free address space or its own placeholders.
                ret = unsafe {
                    match api {
                        0 => MapViewOfFile(hh, access, (offset >> 32) as u32, offset as u32, size),
                        1 => MapViewOfFileEx(hh, access, (offset >> 32) as u32, offset as u32, size, ba),
                        2 => MapViewOfFileFromApp(hh, access, offset, size),
                        3 => MapViewOfFileExNuma(hh, access, (offset >> 32) as u32, offset as u32, size, ba, node),
                        4 | 5 => MapViewOfFile3(hh, process, ba, offset, size, alloc_type, prot, pp, pc),
                        6 => MapViewOfFile3FromApp(hh, process, ba, offset, size, alloc_type, prot, pp, pc),
                        _ => MapViewOfFileNuma2(hh, process, offset, ba, size, alloc_type, prot, node),
                    }
                }
                .Value as usize;
                ret != 0
            },
        );
        if ok {
            let sec = self.sec.handles.get(&h).copied();
            assert!(
                sec.is_some(),
                "{}: mapped a view of a handle never opened",
                self.log
            );
            if (api == 1 || api == 3 || api >= 4) && base != 0 {
                assert_eq!(
                    ret, base,
                    "{}: MV6: the view is not at the address asked for",
                    self.log
                );
            }
            if alloc_type & MEM_REPLACE_PLACEHOLDER == 0 {
                assert_eq!(ret % G, 0, "{}: MV5: view at {ret:#x}", self.log);
            } else {
                self.stats.placeholder_views += 1;
            }
            fx.push(Effect::Map {
                ret,
                sec: sec.unwrap_or(0),
                offset,
            });
        }
        Some(Outcome {
            ok,
            code,
            partial_ok: false,
        })
    }

    fn sec_unmap(
        &mut self,
        b: &mut Bytes,
        st: &State,
        stack: usize,
        fx: &mut Vec<Effect>,
    ) -> Option<Outcome> {
        let addr = match self.pick_view(b) {
            Some((base, v)) if b.u8() % 4 != 0 => {
                base + if b.u8() % 2 == 0 {
                    0
                } else {
                    b.u32() as usize % v.len
                }
            }
            _ => self.addr(b, st, stack),
        };
        let api = b.u8() % 3;
        let flags = b.pick(&[
            0u32,
            0,
            0,
            MEM_UNMAP_WITH_TRANSIENT_BOOST,
            MEM_PRESERVE_PLACEHOLDER,
            MEM_PRESERVE_PLACEHOLDER,
            3,
            4,
            0x8000_0000,
        ]);
        let process = if b.u8() % 4 == 0 {
            self.handle(b, true)
        } else {
            GetCurrentProcess()
        };
        let (ok, code) = self.call(
            format!("UnmapView#{api}({process:?}, {addr:#x}, {flags:#x})"),
            || {
                let a = MEMORY_MAPPED_VIEW_ADDRESS { Value: addr as _ };
                // SAFETY: virtmem unmaps only its own views.
                unsafe {
                    match api {
                        0 => UnmapViewOfFile(a) != 0,
                        1 => UnmapViewOfFileEx(a, flags) != 0,
                        _ => UnmapViewOfFile2(process, a, flags) != 0,
                    }
                }
            },
        );
        if ok {
            // U1: a view held the address; the whole view goes.
            let r = st
                .regions
                .iter()
                .find(|r| addr >= r.base && addr < r.base + r.size);
            assert!(
                r.is_some_and(|r| r.kind == MEM_MAPPED),
                "{}: U2: unmapped {addr:#x}, which is not in a view",
                self.log
            );
            fx.push(Effect::Unmap {
                base: r.unwrap().alloc_base,
                preserve: api != 0 && flags & MEM_PRESERVE_PLACEHOLDER != 0,
            });
        }
        Some(Outcome {
            ok,
            code,
            partial_ok: false,
        })
    }

    /// VirtualAlloc(MEM_COMMIT) / VirtualProtect / MEM_RESET on a view, with protections a
    /// view may take (and others).
    fn sec_commit_protect(&mut self, b: &mut Bytes, fx: &mut Vec<Effect>) -> Option<Outcome> {
        let (base, v) = self.pick_view(b)?;
        // Page-aligned, or (now and then) anywhere inside the view.
        let addr = (base + (b.u32() as usize % v.len)) & !(if b.u8() % 4 == 0 { 0 } else { P - 1 });
        let size = match b.u8() % 4 {
            0 => P,
            1 => (b.u8() as usize % 8 + 1) * P,
            2 => (base + v.len).saturating_sub(addr) + if b.u8() % 2 == 0 { 0 } else { P },
            _ => b.u16() as usize,
        };
        let prot = match b.u8() % 5 {
            0 => self.prot(b),
            _ => b.pick(&[
                PAGE_READWRITE,
                PAGE_READONLY,
                PAGE_WRITECOPY,
                PAGE_NOACCESS,
                PAGE_EXECUTE,
                PAGE_EXECUTE_READ,
                PAGE_EXECUTE_READWRITE,
                PAGE_EXECUTE_WRITECOPY,
                PAGE_READWRITE | PAGE_GUARD,
                PAGE_WRITECOPY | PAGE_GUARD,
            ]),
        };
        if self.big_view_commit(addr, size) {
            return None;
        }
        match b.u8() % 5 {
            0..=1 => {
                let mut ret = 0usize;
                let (ok, code) = self.call(
                    format!("VirtualAlloc(view {addr:#x}, {size:#x}, MEM_COMMIT, {prot:#x})"),
                    || {
                        // SAFETY: commits inside a view of ours.
                        ret = unsafe { VirtualAlloc(addr as _, size, MEM_COMMIT, prot) } as usize;
                        ret != 0
                    },
                );
                fx.push(Effect::Alloc {
                    addr,
                    size,
                    t: MEM_COMMIT,
                    prot,
                    ret,
                });
                Some(Outcome {
                    ok,
                    code,
                    partial_ok: false,
                })
            }
            2 => {
                let mut ret = 0usize;
                let (ok, code) = self.call(
                    format!("VirtualAlloc(view {addr:#x}, {size:#x}, MEM_RESET, {prot:#x})"),
                    || {
                        // SAFETY: MEM_RESET only discards contents.
                        ret = unsafe { VirtualAlloc(addr as _, size, MEM_RESET, prot) } as usize;
                        ret != 0
                    },
                );
                fx.push(Effect::Alloc {
                    addr,
                    size,
                    t: MEM_RESET,
                    prot,
                    ret,
                });
                Some(Outcome {
                    ok,
                    code,
                    partial_ok: false,
                })
            }
            _ => {
                let pre = query(addr);
                let mut old = 0u32;
                let (ok, code) = self.call(
                    format!("VirtualProtect(view {addr:#x}, {size:#x}, {prot:#x})"),
                    || {
                        // SAFETY: a valid out-pointer.
                        unsafe { VirtualProtect(addr as _, size, prot, &mut old) != 0 }
                    },
                );
                if ok {
                    if let Some(r) = pre {
                        assert_eq!(old, r.protect, "{}: VP2: lpflOldProtect", self.log);
                    }
                }
                fx.push(Effect::Protect { addr, size, prot });
                Some(Outcome {
                    ok,
                    code,
                    partial_ok: false,
                })
            }
        }
    }

    /// Reads or writes a page of a view as VirtualQuery allows (copy-on-write pages too).
    fn sec_touch(&mut self, b: &mut Bytes, st: &State) {
        let Some((base, v)) = self.pick_view(b) else {
            return;
        };
        if self.ours(st, base).is_none_or(|a| a.2 != v.id) {
            return;
        }
        let pg = base + (b.u16() as usize % (v.len / P)) * P;
        let write = b.u8() % 3 != 0;
        let value = b.u64() | 1;
        self.touch_view(pg, write, value);
    }

    /// A read or write at `pg`, a page of a view.
    fn touch_view(&mut self, pg: usize, write: bool, value: u64) {
        let Some(r) = query(pg) else { return };
        let Some((&base, &v)) = self.sec.views.range(..=pg).next_back() else {
            return;
        };
        if r.state != MEM_COMMIT || pg >= base + v.len || r.protect & PAGE_GUARD != 0 {
            return;
        }
        let key = (v.sec, v.offset + (pg - base) as u64);
        let wc = matches!(r.protect & 0xFF, PAGE_WRITECOPY | PAGE_EXECUTE_WRITECOPY);
        let private = wc || self.sec.copied.contains(&pg);
        if write && (writable(r.protect) || wc) {
            self.log.0.push(format!(
                "write {value:#x} at view page {pg:#x} ({:#x})",
                r.protect
            ));
            if trace() {
                eprintln!("  {}", self.log.0.last().unwrap());
            }
            // SAFETY: committed and writable (copy-on-write: the kernel copies the page).
            unsafe {
                (pg as *mut u64).write_volatile(value);
                ((pg + P - 8) as *mut u64).write_volatile(value);
            }
            self.stats.section_successes += 1;
            if private {
                // CW1: this view's own copy now.
                self.sec.copied.insert(pg);
                self.data.insert(pg, Data::Known(value));
            } else {
                self.sec.data.insert(key, Data::Known(value));
            }
        } else if readable(r.protect) || wc {
            self.log
                .0
                .push(format!("read at view page {pg:#x} ({:#x})", r.protect));
            self.stats.section_successes += 1;
            // SAFETY: committed and readable.
            let got = unsafe { (pg as *const u64).read_volatile() };
            if self.sec.copied.contains(&pg) {
                self.check_data(pg, got);
            } else if let Some(d) = self.sec.data.get(&key) {
                check_value(&self.log, pg, *d, got);
            }
        }
    }

    /// O2: what was written through a view of a section reads back through every view of it
    /// (pages without a private copy, committed and readable).
    fn check_shared(&self, after: &State) {
        for (&base, v) in &self.sec.views {
            if self.ours(after, base).is_none_or(|a| a.2 != v.id) {
                continue;
            }
            let end = v.offset + v.len as u64;
            for (&(_, off), &d) in self.sec.data.range((v.sec, v.offset)..(v.sec, end)) {
                let pg = base + (off - v.offset) as usize;
                if self.sec.copied.contains(&pg) {
                    continue;
                }
                let Some(r) = after
                    .regions
                    .iter()
                    .find(|r| pg >= r.base && pg < r.base + r.size)
                else {
                    continue;
                };
                let wc = matches!(r.protect & 0xFF, PAGE_WRITECOPY | PAGE_EXECUTE_WRITECOPY);
                if r.state == MEM_COMMIT
                    && r.protect & PAGE_GUARD == 0
                    && (readable(r.protect) || wc)
                {
                    // SAFETY: committed and readable.
                    let got = unsafe { (pg as *const u64).read_volatile() };
                    check_value(&self.log, pg, d, got);
                }
            }
        }
    }

    // -------------------------------------------------------------------------------------
    // Checks
    // -------------------------------------------------------------------------------------

    fn check_call(&mut self, out: &Outcome, before: &State, after: &State, fx: &[Effect]) {
        let log = &self.log;
        if !out.ok {
            assert_ne!(
                out.code, SENTINEL,
                "{log}: failed without setting the last error"
            );
            assert_ne!(
                out.code, ERROR_INTERNAL_ERROR,
                "{log}: a panic inside virtmem"
            );
            assert!(
                KNOWN_CODES.contains(&out.code) || out.code == 170,
                "{log}: unexpected error code {}",
                out.code
            );
        }
        // New allocations: learn what they are; they must have been free memory.
        for a in &after.allocs {
            if before.allocs.iter().any(|x| x.2 == a.2) {
                continue;
            }
            let (mut kind, mut watch) = (Kind::Normal, false);
            for e in fx {
                match *e {
                    Effect::Alloc { t, .. } => {
                        if t & MEM_PHYSICAL != 0 {
                            kind = Kind::Awe;
                        } else if t & MEM_LARGE_PAGES != 0 {
                            kind = Kind::Large;
                        } else if t & MEM_RESERVE_PLACEHOLDER != 0 {
                            kind = Kind::Placeholder;
                        }
                        watch = t & MEM_WRITE_WATCH != 0;
                    }
                    Effect::Free { t, .. }
                        if t & (MEM_PRESERVE_PLACEHOLDER | MEM_COALESCE_PLACEHOLDERS) != 0 =>
                    {
                        kind = Kind::Placeholder;
                    }
                    Effect::Map { .. } => kind = Kind::View,
                    Effect::Unmap { preserve: true, .. } => kind = Kind::Placeholder,
                    _ => {}
                }
            }
            let replaced = before
                .allocs
                .iter()
                .any(|x| x.0 < a.0 + a.1 && a.0 < x.0 + x.1);
            if !replaced {
                for (s, e, p) in kernel_pieces(&before.maps, a.0, a.0 + a.1) {
                    assert!(
                        p.is_none(),
                        "{log}: new allocation {:#x}+{:#x} placed over a mapping at {s:#x}..{e:#x}",
                        a.0,
                        a.1
                    );
                }
            }
            self.kinds
                .insert(a.2, (kind, watch, watch && self.signal_mode));
        }
        if !out.ok && !out.partial_ok {
            assert_eq!(
                before.allocs, after.allocs,
                "{log}: a failing call changed the allocations"
            );
            if before.regions != after.regions {
                let d = before
                    .regions
                    .iter()
                    .zip(&after.regions)
                    .find(|(x, y)| x != y);
                panic!("{log}: a failing call changed the regions: {d:x?}");
            }
        }
        self.check_effects(out, before, after, fx);
        self.check_bookkeeping(after);
        self.check_foreign(before, after);
        // Forget what belonged to released allocations.
        let gone: Vec<(usize, usize, u64)> = before
            .allocs
            .iter()
            .filter(|a| !after.allocs.iter().any(|x| x.2 == a.2))
            .copied()
            .collect();
        for a in gone {
            self.kinds.remove(&a.2);
            self.forget(a.0, a.0 + a.1);
            if self.sec.views.get(&a.0).is_some_and(|v| v.id == a.2) {
                self.sec.views.remove(&a.0);
            }
            let copied: Vec<usize> = self.sec.copied.range(a.0..a.0 + a.1).copied().collect();
            for c in copied {
                self.sec.copied.remove(&c);
            }
        }
        self.check_shared(after);
    }

    fn forget(&mut self, s: usize, e: usize) {
        forget(&mut self.data, &mut self.dirty, s, e);
    }

    fn check_effects(&mut self, out: &Outcome, before: &State, after: &State, fx: &[Effect]) {
        let log = &self.log;
        for e in fx {
            match *e {
                Effect::Alloc {
                    addr,
                    size,
                    t,
                    prot,
                    ret,
                } if out.ok => {
                    assert_ne!(ret, 0, "{log}");
                    if t & (MEM_RESET | MEM_RESET_UNDO) != 0 {
                        let (s, en) = (addr & !(P - 1), (addr + size + P - 1) & !(P - 1));
                        if t & MEM_RESET != 0 {
                            // RS1: shared pages of a view may read zero from now on.
                            let mut reset = Vec::new();
                            for (&base, v) in &self.sec.views {
                                let (from, to) = (s.max(base), en.min(base + v.len));
                                if from >= to {
                                    continue;
                                }
                                let lo = (v.sec, v.offset + (from - base) as u64);
                                let hi = (v.sec, v.offset + (to - base) as u64);
                                reset.extend(self.sec.data.range(lo..hi).map(|(k, _)| *k));
                            }
                            for key in reset {
                                if let Some(Data::Known(x)) = self.sec.data.get(&key).copied() {
                                    self.sec.data.insert(key, Data::Either(x));
                                }
                            }
                        }
                        let keys: Vec<usize> = self.data.range(s..en).map(|(k, _)| *k).collect();
                        for k in keys {
                            let v = match self.data[&k] {
                                Data::Known(x) | Data::Either(x) => x,
                            };
                            self.data.insert(
                                k,
                                if t & MEM_RESET != 0 {
                                    Data::Either(v)
                                } else {
                                    Data::Known(v)
                                },
                            );
                        }
                        continue;
                    }
                    let Some(r) = query(ret) else {
                        panic!("{log}: VirtualQuery of the returned {ret:#x} failed")
                    };
                    assert!(
                        r.alloc_base != 0,
                        "{log}: returned {ret:#x} is not allocated"
                    );
                    let new = !before
                        .allocs
                        .iter()
                        .any(|x| x.0 == r.alloc_base && x.2 == self.ours(after, ret).unwrap().2);
                    if t & MEM_RESERVE != 0 && t & MEM_REPLACE_PLACEHOLDER == 0 {
                        assert!(new, "{log}: MEM_RESERVE succeeded without a new allocation");
                        assert_eq!(ret % G, 0, "{log}: base {ret:#x} not granule aligned");
                    }
                    if t & MEM_COMMIT != 0 || (addr == 0 && t & MEM_RESERVE == 0) {
                        // Every touched page committed with the protection (and fresh pages
                        // read zero).
                        let (s, en) = if addr == 0 || new {
                            let a = self.ours(after, ret).unwrap();
                            (a.0, a.0 + a.1)
                        } else {
                            (addr & !(P - 1), (addr + size + P - 1) & !(P - 1))
                        };
                        let kind = self.kinds.get(&self.ours(after, ret).unwrap().2).copied();
                        let mut at = s;
                        while at < en {
                            let r = query(at).unwrap();
                            assert_eq!(r.state, MEM_COMMIT, "{log}: {at:#x} not committed");
                            if !kind.is_some_and(|k| k.0 == Kind::Large) {
                                assert_eq!(
                                    r.protect & !(PAGE_NOCACHE | PAGE_WRITECOMBINE),
                                    view_protect(
                                        &r,
                                        prot & (0xFF | PAGE_GUARD),
                                        self.sec.copied.contains(&r.base)
                                    ),
                                    "{log}: protection at {at:#x}"
                                );
                            }
                            at = r.base + r.size;
                        }
                        // Pages that were reserved before read zero now.
                        let mut pg = s;
                        let mut n = 0;
                        while pg < en && n < 64 {
                            let was = before
                                .regions
                                .iter()
                                .find(|x| pg >= x.base && pg < x.base + x.size)
                                .map(|x| x.state);
                            if was != Some(MEM_COMMIT) {
                                self.data.remove(&pg);
                                if readable(prot) {
                                    // SAFETY: committed readable (no guard).
                                    let v = unsafe { (pg as *const u64).read_volatile() };
                                    assert_eq!(v, 0, "{log}: freshly committed {pg:#x} not zero");
                                }
                            }
                            pg += P;
                            n += 1;
                        }
                    }
                }
                Effect::Free { addr, size, t } if out.ok => {
                    if t == MEM_DECOMMIT {
                        let a = self.ours(before, addr).expect("decommit of ours");
                        let (s, en) = if size == 0 {
                            (a.0, a.0 + a.1)
                        } else {
                            (addr & !(P - 1), (addr + size + P - 1) & !(P - 1))
                        };
                        for r in regions_of(s, en - s) {
                            assert_eq!(r.state, MEM_RESERVE, "{log}: decommitted {:#x}", r.base);
                        }
                        forget(&mut self.data, &mut self.dirty, s, en);
                    }
                    if t == MEM_RELEASE {
                        let a = self.ours(before, addr).expect("release of ours");
                        assert!(self.ours(after, addr).is_none(), "{log}: still allocated");
                        for (s, e, p) in kernel_pieces(&after.maps, a.0, a.0 + a.1) {
                            assert!(
                                p.is_none(),
                                "{log}: released range still mapped {s:#x}..{e:#x}"
                            );
                        }
                    }
                    if t == MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER {
                        let (s, en) = (addr & !(P - 1), (addr + size + P - 1) & !(P - 1));
                        forget(&mut self.data, &mut self.dirty, s, en);
                    }
                }
                Effect::Protect { addr, size, prot } if out.ok => {
                    let (s, en) = (addr & !(P - 1), (addr + size + P - 1) & !(P - 1));
                    if self.ours(before, s).is_some() {
                        let kind = self.kinds.get(&self.ours(before, s).unwrap().2).copied();
                        // Large pages keep theirs; an AWE window's protection applies to the
                        // frames mapped in it (pages without one read NOACCESS).
                        if !kind.is_some_and(|k| k.0 == Kind::Large || k.0 == Kind::Awe) {
                            for r in regions_of(s, en - s) {
                                assert_eq!(
                                    r.protect & !(PAGE_NOCACHE | PAGE_WRITECOMBINE),
                                    view_protect(
                                        &r,
                                        prot & (0xFF | PAGE_GUARD),
                                        self.sec.copied.contains(&r.base)
                                    ),
                                    "{log}: protection at {:#x}",
                                    r.base
                                );
                            }
                        }
                    } else {
                        let unix = match prot & 0xFF {
                            PAGE_READONLY => libc::PROT_READ,
                            PAGE_READWRITE => libc::PROT_READ | libc::PROT_WRITE,
                            PAGE_EXECUTE => libc::PROT_EXEC,
                            PAGE_EXECUTE_READ => libc::PROT_READ | libc::PROT_EXEC,
                            PAGE_EXECUTE_READWRITE => {
                                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC
                            }
                            _ => libc::PROT_NONE,
                        };
                        let mut pg = s;
                        while pg < en {
                            if let Some(p) = self.canary_prot.get_mut(&pg) {
                                *p = unix;
                            }
                            pg += P;
                        }
                    }
                }
                Effect::ResetWatch { addr, size } if out.ok => {
                    let (s, en) = (addr & !(P - 1), (addr + size + P - 1) & !(P - 1));
                    let keys: Vec<usize> = self.dirty.range(s..en).copied().collect();
                    for k in keys {
                        self.dirty.remove(&k);
                    }
                }
                Effect::Map { ret, sec, offset } => {
                    // O2 / VQ1: a new allocation of its own, MEM_MAPPED from its base.
                    let a = self.ours(after, ret).expect("the view is listed");
                    assert!(
                        a.0 == ret && !before.allocs.iter().any(|x| x.2 == a.2),
                        "{log}: the view at {ret:#x} is not a new allocation"
                    );
                    for r in regions_of(a.0, a.1) {
                        assert!(
                            r.kind == MEM_MAPPED && r.alloc_base == ret,
                            "{log}: VQ1: region {r:x?} of the view at {ret:#x}"
                        );
                    }
                    self.sec.views.insert(
                        ret,
                        ViewRec {
                            id: a.2,
                            sec,
                            offset,
                            len: a.1,
                        },
                    );
                }
                Effect::Unmap { base, preserve } => {
                    if preserve {
                        // U7: the placeholder it replaced is back.
                        let r = query(base).unwrap();
                        assert!(
                            r.state == MEM_RESERVE && r.kind == MEM_PRIVATE && r.alloc_base == base,
                            "{log}: U7: after unmapping with MEM_PRESERVE_PLACEHOLDER: {r:x?}"
                        );
                    } else if let Some(v) = before.allocs.iter().find(|x| x.0 == base) {
                        // U3: the range is free again.
                        assert!(
                            self.ours(after, base).is_none(),
                            "{log}: U3: {base:#x} still listed"
                        );
                        for (s, e, p) in kernel_pieces(&after.maps, v.0, v.0 + v.1) {
                            assert!(
                                p.is_none(),
                                "{log}: U3: unmapped view still mapped {s:#x}..{e:#x}"
                            );
                        }
                    }
                }
                Effect::Awe => {
                    // Frames move between window pages: forget what the harness wrote there.
                    for a in &after.allocs {
                        if self.kinds.get(&a.2).is_some_and(|k| k.0 == Kind::Awe) {
                            forget(&mut self.data, &mut self.dirty, a.0, a.0 + a.1);
                        }
                    }
                }
                _ => {}
            }
        }
        // Data the harness wrote is still there (readable, unguarded committed pages).
        let pages: Vec<(usize, Data)> = self.data.iter().map(|(k, v)| (*k, *v)).collect();
        for (pg, _) in pages {
            if let Some(r) = after
                .regions
                .iter()
                .find(|x| pg >= x.base && pg < x.base + x.size)
            {
                if r.state == MEM_COMMIT && readable(r.protect) {
                    // SAFETY: committed and readable.
                    let v = unsafe { (pg as *const u64).read_volatile() };
                    self.check_data(pg, v);
                } else if r.state != MEM_COMMIT {
                    self.data.remove(&pg);
                }
            }
        }
    }

    /// Every region of every allocation is mapped with the permissions its state implies.
    fn check_bookkeeping(&self, st: &State) {
        let log = &self.log;
        for r in &st.regions {
            let id = self.ours(st, r.base).map(|a| a.2).unwrap_or(0);
            let (kind, _watch, signal) =
                self.kinds
                    .get(&id)
                    .copied()
                    .unwrap_or((Kind::Normal, false, false));
            // O2 / VQ1: views are MEM_MAPPED, and nothing else is.
            assert_eq!(
                r.kind == MEM_MAPPED,
                kind == Kind::View,
                "{log}: region {r:x?} of a {kind:?} allocation"
            );
            if kind == Kind::View {
                self.check_view_pages(st, r);
                continue;
            }
            let expect: &str = if r.state != MEM_COMMIT {
                "---p"
            } else if kind == Kind::Awe {
                // A mapped frame is a shared mapping with the window's protection; a page
                // without a frame reads PAGE_NOACCESS (and so does a frame under NOACCESS).
                match r.protect {
                    PAGE_READWRITE => "rw-s",
                    PAGE_READONLY => "r--s",
                    _ => "---p",
                }
            } else {
                match host_perms(r.protect) {
                    "---" => "---p",
                    "r--" => "r--p",
                    "rw-" => "rw-p",
                    "--x" => "--xp",
                    "r-x" => "r-xp",
                    _ => "rwxp",
                }
            };
            for (s, e, p) in kernel_pieces(&st.maps, r.base, r.base + r.size) {
                let Some(p) = p else {
                    panic!("{log}: region {r:x?}: {s:#x}..{e:#x} is not mapped")
                };
                let got = std::str::from_utf8(&p).unwrap();
                let ok = got == expect
                    || (kind == Kind::Awe && expect == "---p" && got == "---s")
                    || (signal && writable(r.protect) && r.protect & PAGE_GUARD == 0 && {
                        let mut x = expect.as_bytes().to_vec();
                        x[1] = b'-';
                        got.as_bytes() == x.as_slice()
                    });
                assert!(
                    ok,
                    "{log}: region {:#x}+{:#x} (state {:#x}, protect {:#x}, {kind:?}) is mapped {got} at {s:#x}..{e:#x}, expected {expect}",
                    r.base, r.size, r.state, r.protect
                );
            }
        }
        // Canaries: their protection as the harness set it, their contents intact.
        for (&pg, &prot) in &self.canary_prot {
            let i = st.maps.partition_point(|v| v.end <= pg);
            let v = &st.maps[i];
            assert!(v.start <= pg, "{log}: canary page {pg:#x} unmapped");
            let want = [
                if prot & libc::PROT_READ != 0 {
                    b'r'
                } else {
                    b'-'
                },
                if prot & libc::PROT_WRITE != 0 {
                    b'w'
                } else {
                    b'-'
                },
                if prot & libc::PROT_EXEC != 0 {
                    b'x'
                } else {
                    b'-'
                },
                b'p',
            ];
            assert_eq!(v.perms, want, "{log}: canary page {pg:#x} is {}", v.perms());
        }
        for &c in &self.env.canaries {
            check_canary_contents(c, log);
        }
    }

    /// The kernel's mapping of a region of a view: reserved pages `---`; committed pages by
    /// their protection, `MAP_PRIVATE` (`p`) for copy-on-write ones (which may be writable —
    /// the kernel copies — or write-protected), `MAP_SHARED` or (copied pages) `MAP_PRIVATE`
    /// for the others.
    fn check_view_pages(&self, st: &State, r: &Region) {
        let wc = r.protect & PAGE_GUARD == 0
            && matches!(r.protect & 0xFF, PAGE_WRITECOPY | PAGE_EXECUTE_WRITECOPY);
        let perms: &[&str] = if r.state != MEM_COMMIT || r.protect & PAGE_GUARD != 0 {
            &["---"]
        } else {
            match r.protect & 0xFF {
                PAGE_WRITECOPY => &["rw-", "r--"],
                PAGE_EXECUTE_WRITECOPY => &["rwx", "r-x"],
                p => match host_perms(p) {
                    "---" => &["---"],
                    "r--" => &["r--"],
                    "rw-" => &["rw-"],
                    "--x" => &["--x"],
                    "r-x" => &["r-x"],
                    _ => &["rwx"],
                },
            }
        };
        for (s, e, p) in kernel_pieces(&st.maps, r.base, r.base + r.size) {
            let Some(p) = p else {
                panic!(
                    "{}: view region {r:x?}: {s:#x}..{e:#x} is not mapped",
                    self.log
                )
            };
            let got = std::str::from_utf8(&p).unwrap();
            let ok =
                perms.contains(&&got[..3]) && (r.state != MEM_COMMIT || !wc || got.ends_with('p'));
            assert!(
                ok,
                "{}: view region {r:x?} is mapped {got} at {s:#x}..{e:#x}, expected {perms:?}",
                self.log
            );
        }
    }

    /// Mappings outside virtmem's allocations kept their permissions.
    fn check_foreign(&self, before: &State, after: &State) {
        let log = &self.log;
        let ours = |a: usize| -> bool {
            self.ours(before, a).is_some() || self.ours(after, a).is_some() || self.is_canary(a)
        };
        for v in &before.maps {
            if v.path == "[vsyscall]" {
                continue;
            }
            for (s, e, p) in kernel_pieces(&after.maps, v.start, v.end) {
                let Some(p) = p else { continue }; // unmapped (malloc gave memory back)
                if p == v.perms {
                    continue;
                }
                // Only a page that is ours (or a canary) may change.
                let mut pg = s;
                while pg < e {
                    if let Some(a) = self.ours(before, pg).or_else(|| self.ours(after, pg)) {
                        pg = a.0 + a.1;
                        continue;
                    }
                    if !ours(pg) && !malloc_heap_change(v, &before.maps, p) {
                        panic!(
                            "{log}: foreign mapping {:#x}..{:#x} {} {} changed to {} at {pg:#x}",
                            v.start,
                            v.end,
                            v.perms(),
                            v.path,
                            std::str::from_utf8(&p).unwrap()
                        );
                    }
                    pg += P;
                }
            }
        }
    }

    fn finish(&mut self) {
        // Heaps first: destroy the input's heaps, free its blocks and handles.
        self.heap_finish();
        // Release everything this input made, free its frames, undo its foreign locks.
        let st = state();
        if !self.frames.is_empty() {
            let mut k = self.frames.len();
            // SAFETY: the frames this input allocated.
            let ok =
                unsafe { FreeUserPhysicalPages(GetCurrentProcess(), &mut k, self.frames.as_ptr()) };
            assert!(
                ok != 0,
                "{}: freeing the input's frames: {}",
                self.log,
                GetLastError()
            );
            self.frames.clear();
        }
        // Views first (UnmapViewOfFile frees them), then the section handles.
        for a in self.mine(&st) {
            if query(a.0).is_some_and(|r| r.kind == MEM_MAPPED) {
                // SAFETY: our view.
                let ok = unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: a.0 as _ }) };
                assert!(
                    ok != 0,
                    "{}: unmapping {:#x}: {}",
                    self.log,
                    a.0,
                    GetLastError()
                );
            }
        }
        for &h in self.sec.handles.keys() {
            // SAFETY: our handle.
            let ok = unsafe { CloseHandle(h as HANDLE) };
            assert!(
                ok != 0,
                "{}: H1: closing the open handle {h:#x}: {}",
                self.log,
                GetLastError()
            );
        }
        self.sec = Sections::default();
        let st = state();
        for a in self.mine(&st) {
            // SAFETY: our allocation.
            let ok = unsafe { VirtualFree(a.0 as _, 0, MEM_RELEASE) };
            if ok == 0 {
                // A placeholder split leaves several; a replaced one may need preserving.
                panic!("{}: releasing {:#x}: {}", self.log, a.0, GetLastError());
            }
        }
        for &(addr, size) in &self.foreign_locked {
            let s = addr & !(P - 1);
            let e = addr.saturating_add(size).saturating_add(P - 1) & !(P - 1);
            let mut pg = s;
            while pg < e {
                // SAFETY: unlocking never changes contents.
                unsafe { VirtualUnlock(pg as _, P) };
                pg += P;
            }
        }
        for &c in &self.env.canaries {
            fill_canary(c);
        }
        virtmem::set_write_watch_mode(WatchKind::Kernel);
        let end = state();
        let left: Vec<_> = self.mine(&end).into_iter().copied().collect();
        assert!(left.is_empty(), "{}: left allocated: {left:x?}", self.log);
        // O3 / U4: with every handle closed and every view unmapped, every section is gone.
        assert_eq!(
            section_memfds(),
            self.env.memfds,
            "{}: a section outlived its handles and views (memfd left open)",
            self.log
        );
    }
}

/// The protection a region reports after `prot` was asked for: on a view, a page that has its
/// private copy cannot be copy-on-write again (CW1): PAGE_WRITECOPY reads PAGE_READWRITE.
fn view_protect(r: &Region, prot: u32, copied: bool) -> u32 {
    let copied_wc = copied
        && r.kind == MEM_MAPPED
        && matches!(prot & 0xFF, PAGE_WRITECOPY | PAGE_EXECUTE_WRITECOPY)
        && matches!(r.protect & 0xFF, PAGE_READWRITE | PAGE_EXECUTE_READWRITE);
    if !copied_wc {
        return prot;
    }
    (prot & !0xFF)
        | if prot & 0xFF == PAGE_WRITECOPY {
            PAGE_READWRITE
        } else {
            PAGE_EXECUTE_READWRITE
        }
}

/// A value read at `pg` against what was written there.
fn check_value(log: &Log, pg: usize, d: Data, v: u64) {
    match d {
        Data::Known(x) => assert_eq!(
            v, x,
            "{log}: data at {pg:#x} (O2: shared by the views of a section)"
        ),
        Data::Either(x) => assert!(v == x || v == 0, "{log}: data at {pg:#x} after MEM_RESET"),
    }
}

fn forget(data: &mut BTreeMap<usize, Data>, dirty: &mut BTreeSet<usize>, s: usize, e: usize) {
    let keys: Vec<usize> = data.range(s..e).map(|(k, _)| *k).collect();
    for k in keys {
        data.remove(&k);
    }
    let keys: Vec<usize> = dirty.range(s..e).copied().collect();
    for k in keys {
        dirty.remove(&k);
    }
}

/// What a call was asked to do (for the effect checks).
#[derive(Clone, Copy, Debug)]
enum Effect {
    Alloc {
        addr: usize,
        size: usize,
        t: u32,
        prot: u32,
        ret: usize,
    },
    Free {
        addr: usize,
        size: usize,
        t: u32,
    },
    Protect {
        addr: usize,
        size: usize,
        prot: u32,
    },
    ResetWatch {
        addr: usize,
        size: usize,
    },
    Awe,
    /// A view was mapped at `ret` (of the harness's section `sec`, from `offset`).
    Map {
        ret: usize,
        sec: u64,
        offset: u64,
    },
    /// The view based at `base` was unmapped (back into a placeholder with `preserve`).
    Unmap {
        base: usize,
        preserve: bool,
    },
}

/// glibc's non-main arenas grow and shrink their heap by `mprotect` inside a 64 MiB-aligned
/// block whose first page is the heap's read-write header: such changes are malloc's own.
fn malloc_heap_change(v: &Vma, maps: &[Vma], now: [u8; 4]) -> bool {
    const HEAP_MAX: usize = 64 << 20;
    let rw = *b"rw-p";
    let none = *b"---p";
    if !v.path.is_empty() || !((v.perms == rw && now == none) || (v.perms == none && now == rw)) {
        return false;
    }
    let block = v.start & !(HEAP_MAX - 1);
    maps.iter()
        .any(|m| m.start == block && m.perms == rw && m.path.is_empty())
}

// ------------------------------------------------------------------------------------------
// Generated inputs
// ------------------------------------------------------------------------------------------

/// A small deterministic generator (splitmix64) for generated inputs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An input of `len` bytes, biased toward small selector values so that calls find
    /// existing allocations.
    pub fn input(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                let r = self.next();
                if r % 4 == 0 {
                    (r >> 8) as u8 % 8
                } else {
                    (r >> 16) as u8
                }
            })
            .collect()
    }
}
