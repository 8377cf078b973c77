//! Model-based test of sections and views (`sections.md`): random sequences of
//! CreateFileMappingW, DuplicateHandle, OpenFileMappingW, CloseHandle, MapViewOfFile(Ex/3/FromApp),
//! UnmapViewOfFile(Ex/2), and VirtualAlloc(MEM_COMMIT / MEM_RESET), VirtualProtect, VirtualFree
//! and VirtualQuery on views, plus reads and writes through views, run on the process's native
//! space through the Win32 face, and checked after every step against a reference model written
//! from the specification (it uses nothing of the library but its Win32 functions).
//!
//! The model holds sections (page-rounded size, protection, SEC_COMMIT / SEC_RESERVE with the
//! committed pages, SEC_NOCACHE / SEC_WRITECOMBINE, contents as pages of bytes), handles (value,
//! section, access mask) and views (base, pages, offset, AllocationProtect, per-page protection
//! and private copy). A page's contents are a set of alternatives: MEM_RESET makes "zero" one
//! more possibility (the contents become undefined, as for private memory).
//!
//! After every step the test checks:
//! (a) the call's return value and last error (a success leaves the last error untouched,
//!     CreateFileMapping sets it to 0), with the rule id of the prediction in the message;
//! (b) VirtualQuery of every view, region by region (BaseAddress, AllocationBase,
//!     AllocationProtect, State, Protect, RegionSize, Type = MEM_MAPPED);
//! (c) `/proc/self/maps`: every page of every view is mapped with the permissions its state
//!     implies — reserved pages `---`; committed pages by their protection (PAGE_GUARD `---`,
//!     copy-on-write pages `rw-`/`rwx` or write-protected `r--`/`r-x`), and `p` (MAP_PRIVATE) for
//!     copy-on-write and copied pages, `s` (MAP_SHARED) for the others: the kernel prints `s`
//!     exactly when the VMA has VM_MAYSHARE, i.e. was mapped MAP_SHARED, whatever its
//!     protection; no mapping of a section's memfd outside the model's views;
//! (d) the bytes of every committed readable page of every view;
//! (e) one memfd descriptor per live section (a section lives while a handle or a view does);
//! and at the end of each sequence, with everything closed and unmapped, no view mapping and
//! no descriptor left (`/proc/self/fd`).
//!
//! Knobs: `PROPTEST_CASES` (default 48), `SECTIONS_MODEL_STEPS` (longest sequence, default 40).
//! A long run: `PROPTEST_CASES=2000 cargo test --release -p virtmem --test sections_model`.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::{Mutex, MutexGuard, OnceLock};
use virtmem::win32::*;

const P: usize = 0x1000;
const G: usize = 0x10000;
const ARENA_GRANULES: usize = 64;
const ARENA_SIZE: usize = ARENA_GRANULES * G;
/// The granule of the arena holding a private (VirtualAlloc) allocation: "not a view".
const PRIVATE_SLOT: usize = 60;
/// View slots of the arena: a view of at most 4 granules at slot 52 still ends below it.
const SLOTS: usize = 53;
/// Largest section: 4 granules.
const MAX_SECTION: usize = 4 * G;
const SENTINEL: u32 = 0x5EC7_10AD;
static ZERO: [u8; P] = [0; P];

// ------------------------------------------------------------------------------------------
// The arena: free granules far below where the kernel places mappings that name no address.
// ------------------------------------------------------------------------------------------

fn arena() -> usize {
    static ARENA: OnceLock<usize> = OnceLock::new();
    *ARENA.get_or_init(|| {
        assert_eq!(
            virtmem::Layout::native().page_size,
            P,
            "4 KiB pages assumed"
        );
        for i in 0..256usize {
            let want = 0x30_0000_0000usize + i * 0x1_0000_0000;
            // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
            let p = unsafe {
                libc::mmap(
                    want as *mut c_void,
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
            // SAFETY: our own fresh mapping.
            unsafe { libc::munmap(p, ARENA_SIZE) };
            if p as usize == want {
                return want;
            }
        }
        panic!("no free arena found");
    })
}

// ------------------------------------------------------------------------------------------
// The kernel's view: /proc/self/maps and /proc/self/fd
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Vma {
    start: usize,
    end: usize,
    perms: [u8; 4],
    path: String,
}

fn maps() -> Vec<Vma> {
    let text = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    let mut out: Vec<Vma> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let range = it.next()?;
            let perms = it.next()?.as_bytes();
            let path = it.nth(3).unwrap_or("").to_string();
            let (s, e) = range.split_once('-')?;
            Some(Vma {
                start: usize::from_str_radix(s, 16).ok()?,
                end: usize::from_str_radix(e, 16).ok()?,
                perms: [perms[0], perms[1], perms[2], perms[3]],
                path,
            })
        })
        .collect();
    out.sort_by_key(|v| v.start);
    out
}

fn vma_at(maps: &[Vma], addr: usize) -> Option<&Vma> {
    let i = maps.partition_point(|v| v.start <= addr);
    let v = maps.get(i.checked_sub(1)?)?;
    (addr < v.end).then_some(v)
}

const MEMFD: &str = "memfd:virtmem-section";

/// The open descriptors of the process (what each one names), and how many of them are
/// section memfds.
fn fds() -> (Vec<String>, usize) {
    let mut all = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let e = e.unwrap();
        if let Ok(l) = std::fs::read_link(e.path()) {
            all.push(l.to_string_lossy().into_owned());
        }
    }
    // The directory listing's own descriptor.
    all.retain(|l| !l.starts_with("/proc/") || !l.ends_with("/fd"));
    all.sort();
    let memfds = all.iter().filter(|l| l.contains(MEMFD)).count();
    (all, memfds)
}

// ------------------------------------------------------------------------------------------
// The rules, as the specification states them (no use of the library's `rules`)
// ------------------------------------------------------------------------------------------

/// CF2: the six protections a section may have.
fn section_protection_ok(p: u32) -> bool {
    matches!(
        p,
        PAGE_READONLY
            | PAGE_READWRITE
            | PAGE_WRITECOPY
            | PAGE_EXECUTE_READ
            | PAGE_EXECUTE_READWRITE
            | PAGE_EXECUTE_WRITECOPY
    )
}

/// CF10: the access of a handle CreateFileMapping returns.
fn create_access(prot: u32) -> u32 {
    let base = STANDARD_RIGHTS_REQUIRED | SECTION_QUERY | SECTION_MAP_READ;
    base | match prot {
        PAGE_READWRITE => SECTION_MAP_WRITE,
        PAGE_EXECUTE_READ | PAGE_EXECUTE_WRITECOPY => SECTION_MAP_EXECUTE,
        PAGE_EXECUTE_READWRITE => SECTION_MAP_WRITE | SECTION_MAP_EXECUTE,
        _ => 0,
    }
}

/// MV1: the protection of a view mapped with `access`.
fn mv1(access: u32) -> u32 {
    let x = access & FILE_MAP_EXECUTE != 0;
    let a = access & !FILE_MAP_EXECUTE;
    match (a, x) {
        (FILE_MAP_COPY, false) => PAGE_WRITECOPY,
        (FILE_MAP_COPY, true) => PAGE_EXECUTE_WRITECOPY,
        _ if a & FILE_MAP_WRITE != 0 => {
            if x {
                PAGE_EXECUTE_READWRITE
            } else {
                PAGE_READWRITE
            }
        }
        _ if a & FILE_MAP_READ != 0 => {
            if x {
                PAGE_EXECUTE_READ
            } else {
                PAGE_READONLY
            }
        }
        _ => PAGE_NOACCESS,
    }
}

/// MV2: the rights a handle needs for a view of protection `prot`.
fn rights_for(prot: u32) -> u32 {
    match prot {
        PAGE_READWRITE => SECTION_MAP_WRITE,
        PAGE_EXECUTE_READWRITE => SECTION_MAP_WRITE | SECTION_MAP_EXECUTE,
        PAGE_EXECUTE_READ | PAGE_EXECUTE_WRITECOPY => SECTION_MAP_READ | SECTION_MAP_EXECUTE,
        _ => SECTION_MAP_READ,
    }
}

fn may_map(access: u32, prot: u32) -> bool {
    access & rights_for(prot) == rights_for(prot)
}

/// M3-2: MapViewOfFile3's protections.
fn view_protection_ok(p: u32) -> bool {
    p == PAGE_NOACCESS || section_protection_ok(p)
}

/// AC: (read, write, execute) of a protection.
fn class(p: u32) -> (bool, bool, bool) {
    match p & 0xFF {
        PAGE_READONLY | PAGE_WRITECOPY => (true, false, false),
        PAGE_READWRITE => (true, true, false),
        PAGE_EXECUTE | PAGE_EXECUTE_READ | PAGE_EXECUTE_WRITECOPY => (true, false, true),
        PAGE_EXECUTE_READWRITE => (true, true, true),
        _ => (false, false, false),
    }
}

fn compatible(p: u32, view: u32) -> bool {
    let (r, w, x) = class(p);
    let (vr, vw, vx) = class(view);
    (!r || vr) && (!w || vw) && (!x || vx)
}

fn is_wc(p: u32) -> bool {
    matches!(p & 0xFF, PAGE_WRITECOPY | PAGE_EXECUTE_WRITECOPY)
}

/// CW1: what a copy-on-write page becomes once it has its private copy.
fn after_copy(p: u32) -> u32 {
    match p & 0xFF {
        PAGE_WRITECOPY => (p & !0xFF) | PAGE_READWRITE,
        PAGE_EXECUTE_WRITECOPY => (p & !0xFF) | PAGE_EXECUTE_READWRITE,
        _ => p,
    }
}

/// semantics.md §2 (and VA2 / VP1 for views): a VirtualAlloc / VirtualProtect protection.
/// `views`: PAGE_WRITECOPY / PAGE_EXECUTE_WRITECOPY are valid. Returns (base | guard).
fn parse_protect(v: u32, views: bool) -> Option<u32> {
    let base = v & 0xFF;
    let mods = v & !0xFF;
    if mods & !(PAGE_GUARD | PAGE_NOCACHE | PAGE_WRITECOMBINE) != 0 {
        return None;
    }
    let ok = matches!(
        base,
        PAGE_NOACCESS
            | PAGE_READONLY
            | PAGE_READWRITE
            | PAGE_EXECUTE
            | PAGE_EXECUTE_READ
            | PAGE_EXECUTE_READWRITE
    ) || (views && is_wc(base));
    if !ok {
        return None;
    }
    let guard = mods & PAGE_GUARD != 0;
    let nocache = mods & PAGE_NOCACHE != 0;
    let wc = mods & PAGE_WRITECOMBINE != 0;
    let na = base == PAGE_NOACCESS;
    if (guard && na) || (wc && (na || guard)) || (nocache && (guard || na || wc)) {
        return None;
    }
    Some(base | if guard { PAGE_GUARD } else { 0 })
}

fn readable(p: u32) -> bool {
    p & PAGE_GUARD == 0
        && matches!(
            p & 0xFF,
            PAGE_READONLY
                | PAGE_READWRITE
                | PAGE_WRITECOPY
                | PAGE_EXECUTE_READ
                | PAGE_EXECUTE_READWRITE
                | PAGE_EXECUTE_WRITECOPY
        )
}

fn writable(p: u32) -> bool {
    p & PAGE_GUARD == 0
        && matches!(
            p & 0xFF,
            PAGE_READWRITE | PAGE_WRITECOPY | PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY
        )
}

/// The kernel permissions (rwx) a committed page of this protection may have. Copy-on-write
/// pages may be writable (the kernel copies) or write-protected (a fault handler copies).
fn kernel_perms(p: u32) -> &'static [&'static str] {
    if p & PAGE_GUARD != 0 {
        return &["---"];
    }
    match p & 0xFF {
        PAGE_READONLY => &["r--"],
        PAGE_READWRITE => &["rw-"],
        PAGE_WRITECOPY => &["rw-", "r--"],
        PAGE_EXECUTE => &["--x"],
        PAGE_EXECUTE_READ => &["r-x"],
        PAGE_EXECUTE_READWRITE => &["rwx"],
        PAGE_EXECUTE_WRITECOPY => &["rwx", "r-x"],
        _ => &["---"],
    }
}

// ------------------------------------------------------------------------------------------
// The model
// ------------------------------------------------------------------------------------------

/// A page's contents: the alternatives it may hold (an empty vector is a zero page).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Content(Vec<Vec<u8>>);

impl Content {
    fn zero() -> Content {
        Content(vec![Vec::new()])
    }
    fn write(&mut self, off: usize, bytes: &[u8]) {
        for a in &mut self.0 {
            if a.is_empty() {
                a.resize(P, 0);
            }
            a[off..off + bytes.len()].copy_from_slice(bytes);
        }
        let mut out: Vec<Vec<u8>> = Vec::new();
        for a in self.0.drain(..) {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        self.0 = out;
    }
    /// MEM_RESET: the page may now also read as zero.
    fn reset(&mut self) {
        if !self.0.iter().any(|a| a.is_empty() || a[..] == ZERO[..]) {
            self.0.push(Vec::new());
        }
    }
    fn matches(&self, off: usize, got: &[u8]) -> bool {
        self.0.iter().any(|a| {
            if a.is_empty() {
                got == &ZERO[..got.len()]
            } else {
                &a[off..off + got.len()] == got
            }
        })
    }
}

#[derive(Clone, Debug)]
struct Section {
    /// Page-rounded size (CF7).
    pages: usize,
    prot: u32,
    /// PAGE_NOCACHE / PAGE_WRITECOMBINE from SEC_NOCACHE / SEC_WRITECOMBINE (VQ3).
    mods: u32,
    committed: Vec<bool>,
    data: Vec<Content>,
    handles: usize,
    views: usize,
}

#[derive(Clone, Debug)]
struct VPage {
    /// The page's protection when committed (base | PAGE_GUARD), as VirtualQuery reports it
    /// without the section's modifiers.
    prot: u32,
    /// The view's private copy (CW1), once written through a copy-on-write protection.
    copy: Option<Content>,
    /// The page has its private copy and was last given a copy-on-write protection (it
    /// reports PAGE_READWRITE / PAGE_EXECUTE_READWRITE): the engine keeps such pages in
    /// regions of their own (a KNOWN disagreement with VQ1, see `known_*` tests).
    wc_copy: bool,
}

#[derive(Clone, Debug)]
struct View {
    base: usize,
    sec: usize,
    /// Offset in the section, in pages.
    off: usize,
    /// The view's protection (AllocationProtect without the section's modifiers).
    ap: u32,
    pages: Vec<VPage>,
}

fn pg_is_copied(p: &VPage) -> bool {
    p.copy.is_some()
}

impl View {
    fn end(&self) -> usize {
        self.base + self.pages.len() * P
    }
}

#[derive(Default)]
struct Model {
    sections: Vec<Option<Section>>,
    /// Open handles: value → (section, access).
    handles: BTreeMap<usize, (usize, u32)>,
    /// Every handle value ever returned (to pick closed ones).
    seen: Vec<usize>,
    views: Vec<View>,
    /// The private allocation `[base, base + G)`.
    private: usize,
}

/// A prediction: success, or one of these codes (with the rule that predicts each).
type Expect<T> = Result<T, Vec<(u32, &'static str)>>;

fn fail<T>(code: u32, rule: &'static str) -> Expect<T> {
    Err(vec![(code, rule)])
}

impl Model {
    fn sec(&self, id: usize) -> &Section {
        self.sections[id].as_ref().expect("live section")
    }
    fn sec_mut(&mut self, id: usize) -> &mut Section {
        self.sections[id].as_mut().expect("live section")
    }
    fn live_sections(&self) -> usize {
        self.sections.iter().filter(|s| s.is_some()).count()
    }
    /// O3: a section lives while a handle or a view refers to it.
    fn maybe_destroy(&mut self, id: usize) {
        let s = self.sec(id);
        if s.handles == 0 && s.views == 0 {
            self.sections[id] = None;
        }
    }
    fn view_at(&self, addr: usize) -> Option<usize> {
        self.views
            .iter()
            .position(|v| addr >= v.base && addr < v.end())
    }
    fn committed(&self, v: &View, i: usize) -> bool {
        self.sec(v.sec).committed[v.off + i]
    }
    /// (State, Protect) VirtualQuery reports for page `i` of view `v`.
    fn page_state(&self, v: &View, i: usize) -> (u32, u32) {
        if self.committed(v, i) {
            (MEM_COMMIT, v.pages[i].prot | self.sec(v.sec).mods)
        } else {
            (MEM_RESERVE, 0)
        }
    }
    /// Whether `[s, e)` is free of views and of the private allocation.
    fn range_free(&self, s: usize, e: usize) -> bool {
        let overlaps = |b: usize, end: usize| b < e && s < end;
        !self.views.iter().any(|v| overlaps(v.base, v.end()))
            && !overlaps(self.private, self.private + G)
    }
    /// The content a page of a view shows.
    fn content<'a>(&'a self, v: &'a View, i: usize) -> &'a Content {
        match &v.pages[i].copy {
            Some(c) => c,
            None => &self.sec(v.sec).data[v.off + i],
        }
    }
    /// VA3: pages of section `sid` just committed: every other view shows them with its own
    /// protection.
    fn spread_commit(&mut self, sid: usize, newly: &[usize], except: Option<usize>) {
        for (k, v) in self.views.iter_mut().enumerate() {
            if v.sec != sid || Some(k) == except {
                continue;
            }
            for &sp in newly {
                if sp >= v.off && sp < v.off + v.pages.len() {
                    v.pages[sp - v.off] = VPage {
                        prot: v.ap,
                        copy: None,
                        wc_copy: false,
                    };
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Operations (selectors resolved against the model's state when the step runs)
// ------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum H {
    /// An open handle (by index among the open ones).
    Live(u8),
    /// Any value ever returned, open or closed (maybe given out again since).
    Seen(u8),
    Null,
    Bogus(u16),
    /// GetCurrentProcess().
    Current,
}

#[derive(Clone, Debug)]
enum At {
    /// In view `v` (by index), at page `page` (modulo its pages; 240 and above: one past the
    /// end) plus `off` bytes.
    View {
        v: u8,
        page: u8,
        off: u16,
    },
    Private,
    Free {
        slot: u8,
    },
    Null,
}

#[derive(Clone, Debug)]
enum Base {
    Anywhere,
    Slot(u8),
    /// A slot plus a misalignment (1132).
    Misaligned(u8, u16),
    /// The base of an existing view (487), or a slot when there is none.
    OfView(u8),
    Private,
}

#[derive(Clone, Debug)]
enum Off {
    /// A granule of the section (modulo its granules).
    Inside(u8),
    /// This many granules, whatever the section's size.
    Granules(u8),
    Misaligned(u32),
    /// The section's (page-rounded) size: past its last byte.
    AtEnd,
}

#[derive(Clone, Debug)]
enum VSize {
    /// 0: to the section's end.
    Zero,
    /// 1 + this modulo what remains after the offset.
    Within(u32),
    Bytes(u32),
    /// Exactly what remains after the offset.
    Rest,
    /// One byte more than what remains.
    RestPlus1,
}

/// A protection or access: `Fit(i)` picks the i-th (modulo) of the values the target allows
/// (the handle's rights and the section's protection for a view; the view's protection for a
/// page), `Raw` is taken as is (maybe invalid or incompatible).
#[derive(Clone, Debug)]
enum Pick {
    Fit(u8),
    Raw(u32),
}

/// A range size: `Pages(n)` is n pages (1 + modulo what the view has from the address), `Raw`
/// bytes as is.
#[derive(Clone, Debug)]
enum Span {
    Pages(u8),
    Raw(u32),
}

#[derive(Clone, Copy, Debug)]
enum MapApi {
    Plain,
    Ex,
    FromApp,
    Three,
    ThreeFromApp,
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        prot: u32,
        sec: u32,
        size: u32,
    },
    Dup {
        src: H,
        access: u32,
        options: u32,
    },
    Open {
        null_name: bool,
    },
    Close {
        h: H,
    },
    Map {
        h: H,
        api: MapApi,
        /// FILE_MAP_* (MapViewOfFile*) or PAGE_* (MapViewOfFile3).
        access: Pick,
        /// MapViewOfFile3's process: 0 NULL, 1 current, 2 a bogus handle.
        process: u8,
        off: Off,
        size: VSize,
        base: Base,
    },
    Unmap {
        at: At,
        /// 0 UnmapViewOfFile, 1 UnmapViewOfFileEx, 2 UnmapViewOfFile2(current), 3 (NULL).
        api: u8,
        flags: u32,
    },
    Commit {
        at: At,
        size: Span,
        prot: Pick,
    },
    Protect {
        at: At,
        size: Span,
        prot: Pick,
        null_old: bool,
    },
    Free {
        at: At,
        size: u32,
        t: u32,
    },
    Reset {
        at: At,
        size: Span,
        prot: u32,
    },
    Write {
        v: u8,
        page: u8,
        off: u16,
        len: u8,
        val: u8,
    },
    Read {
        v: u8,
        page: u8,
        off: u16,
        len: u16,
    },
    Query {
        at: At,
    },
}

/// MapViewOfFile's desired accesses (valid ones and odd ones).
const ACCESSES: [u32; 14] = [
    FILE_MAP_READ,
    FILE_MAP_WRITE,
    FILE_MAP_READ | FILE_MAP_WRITE,
    FILE_MAP_COPY,
    FILE_MAP_READ | FILE_MAP_COPY,
    0,
    FILE_MAP_EXECUTE,
    FILE_MAP_EXECUTE | FILE_MAP_READ,
    FILE_MAP_EXECUTE | FILE_MAP_COPY,
    FILE_MAP_EXECUTE | FILE_MAP_WRITE,
    FILE_MAP_ALL_ACCESS,
    FILE_MAP_ALL_ACCESS | FILE_MAP_EXECUTE,
    SECTION_MAP_EXECUTE | FILE_MAP_READ,
    FILE_MAP_TARGETS_INVALID | FILE_MAP_READ,
];

/// Page protections for views (MapViewOfFile3, MEM_COMMIT, VirtualProtect).
const VIEW_PROTS: [u32; 8] = [
    PAGE_NOACCESS,
    PAGE_READONLY,
    PAGE_READWRITE,
    PAGE_WRITECOPY,
    PAGE_EXECUTE,
    PAGE_EXECUTE_READ,
    PAGE_EXECUTE_READWRITE,
    PAGE_EXECUTE_WRITECOPY,
];

fn h_strategy() -> impl Strategy<Value = H> {
    prop_oneof![
        14 => any::<u8>().prop_map(H::Live),
        3 => any::<u8>().prop_map(H::Seen),
        1 => Just(H::Null),
        1 => any::<u16>().prop_map(H::Bogus),
        1 => Just(H::Current),
    ]
}

fn at_strategy() -> impl Strategy<Value = At> {
    prop_oneof![
        20 => (any::<u8>(), any::<u8>(), prop_oneof![4 => Just(0u16), 1 => 0..P as u16])
            .prop_map(|(v, page, off)| At::View { v, page, off }),
        1 => Just(At::Private),
        1 => any::<u8>().prop_map(|slot| At::Free { slot }),
        1 => Just(At::Null),
    ]
}

fn span_strategy() -> impl Strategy<Value = Span> {
    prop_oneof![
        12 => prop_oneof![3 => Just(0u8), 1 => any::<u8>()].prop_map(Span::Pages),
        1 => prop::sample::select(vec![0u32, 1, 0x1800, 0x6000, 0x10_0000]).prop_map(Span::Raw),
    ]
}

fn pick_strategy(raw: Vec<u32>) -> impl Strategy<Value = Pick> {
    prop_oneof![
        6 => any::<u8>().prop_map(Pick::Fit),
        1 => prop::sample::select(raw).prop_map(Pick::Raw),
    ]
}

/// Raw protections for MEM_COMMIT / VirtualProtect: any view protection, invalid values, and
/// (VirtualProtect) modifiers.
fn raw_page_prots(modifiers: bool) -> Vec<u32> {
    let mut v = VIEW_PROTS.to_vec();
    v.extend([0, PAGE_READONLY | PAGE_READWRITE, 0x8000]);
    if modifiers {
        v.extend([
            PAGE_READWRITE | PAGE_GUARD,
            PAGE_READONLY | PAGE_GUARD,
            PAGE_WRITECOPY | PAGE_GUARD,
            PAGE_NOACCESS | PAGE_GUARD,
            PAGE_READWRITE | PAGE_NOCACHE,
            PAGE_READONLY | PAGE_WRITECOMBINE,
        ]);
    }
    v
}

fn create_strategy() -> impl Strategy<Value = Op> {
    (
        prop_oneof![
            8 => prop::sample::select(vec![
                PAGE_READONLY,
                PAGE_READWRITE,
                PAGE_READWRITE,
                PAGE_READWRITE,
                PAGE_WRITECOPY,
                PAGE_EXECUTE_READ,
                PAGE_EXECUTE_READWRITE,
                PAGE_EXECUTE_WRITECOPY,
            ]),
            // Invalid (CF2).
            1 => prop::sample::select(vec![
                0,
                PAGE_NOACCESS,
                PAGE_EXECUTE,
                PAGE_READWRITE | PAGE_GUARD,
                PAGE_READWRITE | PAGE_NOCACHE,
                PAGE_READONLY | PAGE_READWRITE,
            ]),
        ],
        prop_oneof![
            8 => prop::sample::select(vec![
                0,
                0,
                SEC_COMMIT,
                SEC_RESERVE,
                SEC_RESERVE,
                SEC_RESERVE,
                SEC_COMMIT | SEC_NOCACHE,
                SEC_RESERVE | SEC_WRITECOMBINE,
            ]),
            // Invalid (CF4).
            1 => prop::sample::select(vec![
                SEC_COMMIT | SEC_RESERVE,
                SEC_NOCACHE,
                SEC_WRITECOMBINE,
                SEC_FILE,
                SEC_LARGE_PAGES,
                SEC_IMAGE,
                SEC_IMAGE | SEC_COMMIT,
            ]),
        ],
        prop_oneof![
            1 => Just(0u32),
            6 => prop::sample::select(vec![
                1u32, 0xFFF, 0x1000, 0x1001, 0x3457, 0x10000, 0x10000 + 0x123, 0x20000,
                0x2F000, 0x40000,
            ]),
            4 => 1u32..=MAX_SECTION as u32,
        ],
    )
        .prop_map(|(prot, sec, size)| Op::Create { prot, sec, size })
}

fn map_strategy() -> impl Strategy<Value = Op> {
    let map_api = prop::sample::select(vec![
        MapApi::Plain,
        MapApi::Plain,
        MapApi::Ex,
        MapApi::Ex,
        MapApi::FromApp,
        MapApi::Three,
        MapApi::ThreeFromApp,
    ]);
    let mut raw_access = ACCESSES.to_vec();
    // For MapViewOfFile3 the raw value is a protection: these are invalid there (M3-2).
    raw_access.extend([PAGE_EXECUTE, PAGE_READWRITE | PAGE_GUARD]);
    (
        h_strategy(),
        map_api,
        pick_strategy(raw_access),
        prop_oneof![10 => Just(1u8), 3 => Just(0u8), 1 => Just(2u8)],
        prop_oneof![
            12 => prop_oneof![3 => Just(0u8), 1 => any::<u8>()].prop_map(Off::Inside),
            1 => (1u8..8).prop_map(Off::Granules),
            1 => prop::sample::select(vec![1u32, 0x1000, 0x8000, 0x10001]).prop_map(Off::Misaligned),
            1 => Just(Off::AtEnd),
        ],
        prop_oneof![
            5 => Just(VSize::Zero),
            4 => any::<u32>().prop_map(VSize::Within),
            1 => prop_oneof![1u32..0x50000, Just(0x3452u32)].prop_map(VSize::Bytes),
            2 => Just(VSize::Rest),
            1 => Just(VSize::RestPlus1),
        ],
        prop_oneof![
            6 => Just(Base::Anywhere),
            6 => any::<u8>().prop_map(Base::Slot),
            1 => (any::<u8>(), prop::sample::select(vec![1u16, 42, 0x1000, 0x8000])).prop_map(|(s, m)| Base::Misaligned(s, m)),
            1 => any::<u8>().prop_map(Base::OfView),
            1 => Just(Base::Private),
        ],
    )
        .prop_map(|(h, api, access, process, off, size, base)| Op::Map {
            h,
            api,
            access,
            process,
            off,
            size,
            base,
        })
}

/// A sequence: a section and a view of it first (most often), then anything.
fn sequence_strategy(steps: usize) -> impl Strategy<Value = Vec<Op>> {
    (
        prop::collection::vec(
            (
                (
                    prop::sample::select(vec![
                        PAGE_READWRITE,
                        PAGE_READWRITE,
                        PAGE_WRITECOPY,
                        PAGE_EXECUTE_READWRITE,
                        PAGE_READONLY,
                    ]),
                    prop::sample::select(vec![0, SEC_RESERVE, SEC_COMMIT | SEC_NOCACHE]),
                    1u32..=MAX_SECTION as u32,
                )
                    .prop_map(|(prot, sec, size)| Op::Create { prot, sec, size }),
                (any::<u8>(), 0u8..2, any::<u8>()).prop_map(|(a, ex, slot)| Op::Map {
                    h: H::Live(255),
                    api: if ex == 0 { MapApi::Plain } else { MapApi::Ex },
                    access: Pick::Fit(a),
                    process: 1,
                    off: Off::Inside(0),
                    size: VSize::Zero,
                    base: Base::Slot(slot),
                }),
            ),
            1..=3,
        ),
        prop::collection::vec(op_strategy(), 1..=steps),
    )
        .prop_map(|(first, rest)| {
            first
                .into_iter()
                .flat_map(|(c, m)| [c, m])
                .chain(rest)
                .collect()
        })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let dup = (
        h_strategy(),
        prop::sample::select(
            ACCESSES
                .iter()
                .copied()
                .chain([SECTION_MAP_READ | SECTION_MAP_WRITE | SECTION_MAP_EXECUTE])
                .collect::<Vec<_>>(),
        ),
        prop::sample::select(vec![
            0u32,
            0,
            DUPLICATE_SAME_ACCESS,
            DUPLICATE_SAME_ACCESS,
            DUPLICATE_CLOSE_SOURCE,
            3,
        ]),
    )
        .prop_map(|(src, access, options)| Op::Dup {
            src,
            access,
            options,
        });
    let unmap = (
        at_strategy(),
        prop_oneof![4 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        prop::sample::select(vec![0u32, 0, 0, 1, 2, 3, 4, 0x8000]),
    )
        .prop_map(|(at, api, flags)| Op::Unmap { at, api, flags });
    prop_oneof![
        6 => create_strategy(),
        3 => dup,
        1 => any::<bool>().prop_map(|null_name| Op::Open { null_name }),
        3 => h_strategy().prop_map(|h| Op::Close { h }),
        12 => map_strategy(),
        3 => unmap,
        8 => (at_strategy(), span_strategy(), pick_strategy(raw_page_prots(false)))
            .prop_map(|(at, size, prot)| Op::Commit { at, size, prot }),
        10 => (at_strategy(), span_strategy(), pick_strategy(raw_page_prots(true)), prop::bool::weighted(0.03))
            .prop_map(|(at, size, prot, null_old)| Op::Protect { at, size, prot, null_old }),
        2 => (at_strategy(), prop::sample::select(vec![0u32, 0x1000, 0x2000]), prop::sample::select(vec![MEM_RELEASE, MEM_DECOMMIT, MEM_DECOMMIT, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER]))
            .prop_map(|(at, size, t)| Op::Free { at, size, t }),
        3 => (at_strategy(), span_strategy(), prop::sample::select(vec![PAGE_NOACCESS, PAGE_READWRITE, PAGE_READONLY, PAGE_READWRITE, 0]))
            .prop_map(|(at, size, prot)| Op::Reset { at, size, prot }),
        20 => (any::<u8>(), any::<u8>(), prop_oneof![Just(0u16), Just(P as u16 - 16), 0..P as u16], 1u8..=16, any::<u8>())
            .prop_map(|(v, page, off, len, val)| Op::Write { v, page, off, len, val }),
        4 => (any::<u8>(), any::<u8>(), 0..P as u16, 1..=P as u16)
            .prop_map(|(v, page, off, len)| Op::Read { v, page, off, len }),
        4 => at_strategy().prop_map(|at| Op::Query { at }),
    ]
}

// ------------------------------------------------------------------------------------------
// The harness
// ------------------------------------------------------------------------------------------

/// Only one sequence runs at a time (the native space, the handle table and the arena are the
/// process's).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

struct Harness {
    _serial: MutexGuard<'static, ()>,
    m: Model,
    arena: usize,
    log: Vec<String>,
    /// Views and handles the library returned, also those the model did not expect (for the
    /// cleanup after a failed check).
    made_views: Vec<usize>,
    made_handles: Vec<usize>,
    /// Descriptors open when the sequence started.
    fds_before: Vec<String>,
    /// Map requests skipped because the spec does not say what they do (see `Op::Map`).
    skipped_maps: usize,
    name_counter: u32,
    /// Leave out requests that meet a known engine bug (the main property); the `KNOWN`
    /// tests make them.
    avoid_known: bool,
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Give everything back even when a check failed, so the next case starts clean.
        for &b in &self.made_views {
            // SAFETY: unmapping views this test made (a failure for a gone one is harmless).
            unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: b as _ }) };
        }
        for &h in &self.made_handles {
            // SAFETY: closing handles this test made.
            unsafe { CloseHandle(h as HANDLE) };
        }
        // SAFETY: the test's private allocation.
        unsafe { VirtualFree(self.m.private as _, 0, MEM_RELEASE) };
    }
}

fn query(addr: usize) -> Option<MEMORY_BASIC_INFORMATION> {
    let mut m = MEMORY_BASIC_INFORMATION::default();
    // SAFETY: a valid out-pointer and its size.
    let n = unsafe { VirtualQuery(addr as *const c_void, &mut m, size_of_val(&m)) };
    (n != 0).then_some(m)
}

/// (BaseAddress, AllocationBase, AllocationProtect, State, Protect, RegionSize, Type).
fn fields(m: &MEMORY_BASIC_INFORMATION) -> (usize, usize, u32, u32, u32, usize, u32) {
    (
        m.BaseAddress as usize,
        m.AllocationBase as usize,
        m.AllocationProtect,
        m.State,
        m.Protect,
        m.RegionSize,
        m.Type,
    )
}

fn show<T: std::fmt::Debug>(e: &Expect<T>) -> String {
    match e {
        Ok(v) => format!("success ({v:?})"),
        Err(c) => format!("failure with {c:?}"),
    }
}

impl Harness {
    fn new() -> Harness {
        let serial = serial();
        let arena = arena();
        let m = maps();
        for pg in (arena..arena + ARENA_SIZE).step_by(P) {
            assert!(
                vma_at(&m, pg).is_none(),
                "arena page {pg:#x} is mapped at case start"
            );
        }
        assert_eq!(fds().1, 0, "a section memfd is open at case start");
        let private = arena + PRIVATE_SLOT * G;
        // SAFETY: a fresh allocation in the free arena.
        let p = unsafe { VirtualAlloc(private as _, G, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) };
        assert_eq!(p as usize, private, "the private allocation");
        Harness {
            _serial: serial,
            m: Model {
                private,
                ..Model::default()
            },
            arena,
            log: Vec::new(),
            made_views: Vec::new(),
            made_handles: Vec::new(),
            fds_before: fds().0,
            skipped_maps: 0,
            name_counter: 0,
            avoid_known: true,
        }
    }

    fn fail_msg(&self, what: String) -> String {
        let from = self.log.len().saturating_sub(16);
        format!(
            "{what}\n  after {} steps; last steps:\n    {}",
            self.log.len(),
            self.log[from..].join("\n    ")
        )
    }

    /// Compares a call's outcome with the prediction: `ok` and the last error.
    fn verdict<T: std::fmt::Debug>(&self, exp: &Expect<T>, ok: bool, code: u32, untouched: u32) {
        let name = self
            .log
            .last()
            .map_or("?", |l| l.split(['(', '#']).next().unwrap_or("?"));
        count(name, if ok { 0 } else { 1 });
        if !ok && std::env::var_os("SECTIONS_MODEL_CODES").is_some() {
            let rule = match exp {
                Err(c) => c.iter().find(|x| x.0 == code).map_or("?", |x| x.1),
                _ => "?",
            };
            count(&format!("  {name} {code} {rule}"), 1);
        }
        match exp {
            Ok(_) if !ok => panic!(
                "{}",
                self.fail_msg(format!(
                    "the model expects {}, the call failed with {code}",
                    show(exp)
                ))
            ),
            Ok(_) => assert_eq!(
                code,
                untouched,
                "{}",
                self.fail_msg(format!(
                    "a successful call changed the last error to {code} (expected {untouched})"
                ))
            ),
            Err(_) if ok => panic!(
                "{}",
                self.fail_msg(format!(
                    "the model expects {}, the call succeeded",
                    show(exp)
                ))
            ),
            Err(codes) => assert!(
                codes.iter().any(|c| c.0 == code),
                "{}",
                self.fail_msg(format!(
                    "the model expects {}, the call failed with {code}",
                    show(exp)
                ))
            ),
        }
    }

    fn handle(&self, h: &H) -> usize {
        match *h {
            H::Live(i) => {
                if self.m.handles.is_empty() {
                    0x7770
                } else {
                    *self
                        .m
                        .handles
                        .keys()
                        .nth(i as usize % self.m.handles.len())
                        .unwrap()
                }
            }
            H::Seen(i) => {
                if self.m.seen.is_empty() {
                    4
                } else {
                    self.m.seen[i as usize % self.m.seen.len()]
                }
            }
            H::Null => 0,
            H::Bogus(v) => [1usize, 2, 3, 0x1234, 0x7770, 0xFFFF_FFF0][v as usize % 6],
            H::Current => usize::MAX,
        }
    }

    fn addr(&self, at: &At) -> usize {
        match *at {
            At::View { v, page, off } if !self.m.views.is_empty() => {
                let v = &self.m.views[v as usize % self.m.views.len()];
                // One page past the end now and then; else a page of the view.
                let k = if page >= 240 {
                    v.pages.len()
                } else {
                    page as usize % v.pages.len()
                };
                v.base + k * P + off as usize
            }
            At::View { .. } | At::Free { .. } => {
                let slot = match *at {
                    At::Free { slot } => slot as usize % SLOTS,
                    _ => 0,
                };
                let a = self.arena + slot * G;
                if self.m.range_free(a, a + P) {
                    a
                } else {
                    self.arena + 57 * G
                }
            }
            At::Private => self.m.private + 0x1000,
            At::Null => 0,
        }
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Create { prot, sec, size } => self.create(*prot, *sec, *size),
            Op::Dup {
                src,
                access,
                options,
            } => self.dup(src, *access, *options),
            Op::Open { null_name } => self.open(*null_name),
            Op::Close { h } => self.close(h),
            Op::Map {
                h,
                api,
                access,
                process,
                off,
                size,
                base,
            } => self.map(h, *api, access, *process, off, size, base),
            Op::Unmap { at, api, flags } => self.unmap(at, *api, *flags),
            Op::Commit { at, size, prot } => {
                let addr = self.addr(at);
                let (size, prot) = (self.span(addr, size), self.fit_prot(addr, prot, false));
                self.commit(at, size, prot)
            }
            Op::Protect {
                at,
                size,
                prot,
                null_old,
            } => {
                let addr = self.addr(at);
                let (size, prot) = (self.span(addr, size), self.fit_prot(addr, prot, true));
                self.protect(at, size, prot, *null_old)
            }
            Op::Free { at, size, t } => self.free(at, *size as usize, *t),
            Op::Reset { at, size, prot } => {
                let size = self.span(self.addr(at), size);
                self.reset(at, size, *prot)
            }
            Op::Write {
                v,
                page,
                off,
                len,
                val,
            } => self.write(*v, *page, *off as usize, *len as usize, *val),
            Op::Read { v, page, off, len } => self.read(*v, *page, *off as usize, *len as usize),
            Op::Query { at } => self.query_op(at),
        }
    }

    /// A range size from `addr`: `Pages(n)` stays inside the view holding `addr`.
    fn span(&self, addr: usize, s: &Span) -> usize {
        match *s {
            Span::Raw(b) => b as usize,
            Span::Pages(n) => {
                let room = self
                    .m
                    .view_at(addr)
                    .map_or(4, |i| (self.m.views[i].end() - (addr & !(P - 1))) / P);
                (1 + n as usize % room) * P - (addr % P)
            }
        }
    }

    /// A protection for MEM_COMMIT / VirtualProtect at `addr`: `Fit` picks one compatible
    /// with the view there (with PAGE_GUARD variants for VirtualProtect).
    fn fit_prot(&self, addr: usize, p: &Pick, guard: bool) -> u32 {
        match *p {
            Pick::Raw(r) => r,
            Pick::Fit(i) => {
                let mut c: Vec<u32> = VIEW_PROTS.to_vec();
                if guard {
                    c.extend([
                        PAGE_READONLY | PAGE_GUARD,
                        PAGE_READWRITE | PAGE_GUARD,
                        PAGE_WRITECOPY | PAGE_GUARD,
                    ]);
                }
                if let Some(v) = self.m.view_at(addr) {
                    c.retain(|&p| compatible(p, self.m.views[v].ap));
                }
                c[i as usize % c.len()]
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Handles and sections
    // ---------------------------------------------------------------------------------------

    fn create(&mut self, prot: u32, sec: u32, size: u32) {
        let size = size as usize;
        self.log.push(format!(
            "CreateFileMappingW(INVALID_HANDLE_VALUE, {:#x}, 0, {size:#x})",
            prot | sec
        ));
        let exp: Expect<()> = (|| {
            // CF2 before CF4 (CF11).
            if !section_protection_ok(prot) {
                return fail(87, "CF2");
            }
            let has = |b: u32| sec & b != 0;
            if has(SEC_IMAGE) {
                return if has(SEC_COMMIT | SEC_RESERVE) {
                    fail(87, "CF4/IM1")
                } else {
                    fail(193, "CF4/IM1")
                };
            }
            if has(SEC_FILE)
                || (has(SEC_COMMIT) && has(SEC_RESERVE))
                || (sec != 0 && !has(SEC_COMMIT | SEC_RESERVE))
                || has(SEC_LARGE_PAGES)
            {
                return fail(87, "CF4");
            }
            if size == 0 {
                return fail(87, "CF3");
            }
            Ok(())
        })();
        SetLastError(SENTINEL);
        // SAFETY: plain values; no name.
        let h = unsafe {
            CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                std::ptr::null(),
                prot | sec,
                0,
                size as u32,
                std::ptr::null(),
            )
        } as usize;
        let code = GetLastError();
        if h != 0 {
            self.made_handles.push(h);
        }
        // CF8: the last error is 0 after a success.
        self.verdict(&exp, h != 0, code, 0);
        if h == 0 {
            return;
        }
        self.check_new_handle(h, "CreateFileMappingW");
        let pages = size.div_ceil(P);
        let reserve = sec & SEC_RESERVE != 0;
        let mods = if sec & SEC_NOCACHE != 0 {
            PAGE_NOCACHE
        } else if sec & SEC_WRITECOMBINE != 0 {
            PAGE_WRITECOMBINE
        } else {
            0
        };
        self.m.sections.push(Some(Section {
            pages,
            prot,
            mods,
            committed: vec![!reserve; pages],
            data: vec![Content::zero(); pages],
            handles: 1,
            views: 0,
        }));
        let id = self.m.sections.len() - 1;
        self.m.handles.insert(h, (id, create_access(prot)));
        self.m.seen.push(h);
    }

    /// O5: a new handle is a multiple of 4, never NULL or -1, and not an open one.
    fn check_new_handle(&self, h: usize, what: &str) {
        assert!(
            h % 4 == 0 && h != 0 && h != usize::MAX && !self.m.handles.contains_key(&h),
            "{}",
            self.fail_msg(format!("O5: {what} returned handle {h:#x}"))
        );
    }

    fn dup(&mut self, src: &H, access: u32, options: u32) {
        let src = match src {
            H::Current => 0x1234,
            h => self.handle(h),
        };
        self.log.push(format!(
            "DuplicateHandle({src:#x}, access {access:#x}, options {options})"
        ));
        let exp: Expect<(usize, u32)> = match self.m.handles.get(&src) {
            None => fail(6, "H2/O5"),
            Some(&(sid, a)) => Ok((
                sid,
                if options & DUPLICATE_SAME_ACCESS != 0 {
                    a
                } else {
                    access
                },
            )),
        };
        let mut out: HANDLE = null_mut();
        SetLastError(SENTINEL);
        // SAFETY: a valid out-pointer.
        let ok = unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                src as HANDLE,
                GetCurrentProcess(),
                &mut out,
                access,
                FALSE,
                options,
            )
        } != 0;
        let code = GetLastError();
        if ok {
            self.made_handles.push(out as usize);
        }
        self.verdict(&exp, ok, code, SENTINEL);
        let Ok((sid, access)) = exp else { return };
        if options & DUPLICATE_CLOSE_SOURCE != 0 {
            self.m.handles.remove(&src);
            self.m.sec_mut(sid).handles -= 1;
        }
        let h = out as usize;
        self.check_new_handle(h, "DuplicateHandle");
        self.m.handles.insert(h, (sid, access));
        self.m.sec_mut(sid).handles += 1;
        self.m.seen.push(h);
    }

    fn open(&mut self, null_name: bool) {
        self.name_counter += 1;
        let name: Vec<u16> = format!(
            "Local\\virtmem-model-none-{}-{}\0",
            std::process::id(),
            self.name_counter
        )
        .encode_utf16()
        .collect();
        self.log.push(format!(
            "OpenFileMappingW(FILE_MAP_READ, null name {null_name})"
        ));
        let exp: Expect<()> = if null_name {
            fail(87, "OF1")
        } else {
            fail(2, "OF1")
        };
        SetLastError(SENTINEL);
        // SAFETY: NULL or a NUL-terminated name.
        let h = unsafe {
            OpenFileMappingW(
                FILE_MAP_READ,
                FALSE,
                if null_name {
                    std::ptr::null()
                } else {
                    name.as_ptr()
                },
            )
        } as usize;
        let code = GetLastError();
        if h != 0 {
            self.made_handles.push(h);
        }
        self.verdict(&exp, h != 0, code, SENTINEL);
    }

    fn close(&mut self, h: &H) {
        let h = self.handle(h);
        self.log.push(format!("CloseHandle({h:#x})"));
        let exp: Expect<Option<usize>> = if h == usize::MAX {
            Ok(None) // H1: the current process pseudo-handle: TRUE, no effect.
        } else {
            match self.m.handles.get(&h) {
                Some(&(sid, _)) => Ok(Some(sid)),
                None => fail(6, "H1"),
            }
        };
        SetLastError(SENTINEL);
        // SAFETY: closing a handle value (maybe not open).
        let ok = unsafe { CloseHandle(h as HANDLE) } != 0;
        let code = GetLastError();
        self.verdict(&exp, ok, code, SENTINEL);
        if let Ok(Some(sid)) = exp {
            self.m.handles.remove(&h);
            self.m.sec_mut(sid).handles -= 1;
            self.m.maybe_destroy(sid);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn map(
        &mut self,
        h: &H,
        api: MapApi,
        access: &Pick,
        process: u8,
        off: &Off,
        size: &VSize,
        base: &Base,
    ) {
        let hv = self.handle(h);
        let three = matches!(api, MapApi::Three | MapApi::ThreeFromApp);
        let target = self
            .m
            .handles
            .get(&hv)
            .map(|&(sid, a)| (self.m.sec(sid), a));
        // The access (or MapViewOfFile3's protection): `Fit` picks one the handle and the
        // section allow.
        let access = match *access {
            Pick::Raw(r) => r,
            Pick::Fit(i) => {
                let mut c: Vec<u32> = if three {
                    VIEW_PROTS
                        .iter()
                        .copied()
                        .filter(|&p| view_protection_ok(p))
                        .collect()
                } else {
                    ACCESSES.to_vec()
                };
                if let Some((s, a)) = target {
                    let allowed: Vec<u32> = c
                        .iter()
                        .copied()
                        .filter(|&x| {
                            let p = if three { x } else { mv1(x) };
                            may_map(a, p) && may_map(create_access(s.prot), p)
                        })
                        .collect();
                    if !allowed.is_empty() {
                        c = allowed;
                    }
                }
                c[i as usize % c.len()]
            }
        };
        let prot = if three { access } else { mv1(access) };
        let sec_pages = target.map_or(4, |(s, _)| s.pages);
        let offset = match *off {
            Off::Inside(n) => (n as usize % (sec_pages * P).div_ceil(G)) * G,
            Off::Granules(n) => n as usize * G,
            Off::Misaligned(m) => m as usize,
            Off::AtEnd => sec_pages * P,
        };
        let rest = (sec_pages * P).saturating_sub(offset);
        let size = match *size {
            VSize::Zero => 0,
            VSize::Within(b) => 1 + b as usize % rest.max(1),
            VSize::Bytes(b) => b as usize,
            VSize::Rest => rest.max(1),
            VSize::RestPlus1 => rest + 1,
        };
        let base = match *base {
            _ if matches!(api, MapApi::Plain | MapApi::FromApp) => None,
            Base::Anywhere => None,
            Base::Slot(s) => Some(self.arena + (s as usize % SLOTS) * G),
            Base::Misaligned(s, m) => Some(self.arena + (s as usize % SLOTS) * G + m as usize),
            Base::OfView(i) => Some(if self.m.views.is_empty() {
                self.arena
            } else {
                self.m.views[i as usize % self.m.views.len()].base
            }),
            Base::Private => Some(self.m.private),
        };
        let process_h: HANDLE = match process {
            0 => null_mut(),
            1 => GetCurrentProcess(),
            _ => 0x1234 as HANDLE,
        };
        // The prediction, in MV7's order; MapViewOfFile3's own checks (process, protection)
        // have no specified place in it: either code is accepted when both apply.
        let mut loose: Vec<(u32, &'static str)> = Vec::new();
        if three && process == 2 {
            loose.push((6, "M3-1"));
        }
        if three && !view_protection_ok(prot) {
            loose.push((87, "M3-2"));
        }
        let ordered: Expect<(usize, usize)> = (|| {
            let Some(&(sid, hacc)) = self.m.handles.get(&hv) else {
                return fail(6, "O5/MV7");
            };
            if !may_map(hacc, prot & 0xFF) {
                return fail(5, "MV2");
            }
            if offset % G != 0 {
                return fail(1132, if three { "M3-4" } else { "MV3" });
            }
            if base.is_some_and(|b| b % G != 0) {
                return fail(1132, if three { "M3-3" } else { "MV6" });
            }
            let s = self.m.sec(sid);
            if offset >= s.pages * P {
                return fail(5, "MV4 (offset at or past the end)");
            }
            if size != 0 && offset + size > s.pages * P {
                return fail(5, "MV4 (past the end)");
            }
            let len = if size == 0 {
                s.pages * P - offset
            } else {
                size
            }
            .div_ceil(P)
                * P;
            if let Some(b) = base {
                if !self.m.range_free(b, b + len) {
                    return fail(487, "MV6");
                }
            }
            Ok((sid, len / P))
        })();
        let exp = match (ordered, loose.is_empty()) {
            (e, true) => e,
            (Ok(_), false) => Err(loose),
            (Err(mut e), false) => {
                e.extend(loose);
                Err(e)
            }
        };
        // A handle DuplicateHandle gave more rights than CreateFileMapping gives for the
        // section's protection (CF10) may ask for a view the section's protection does not
        // allow: the spec does not say what happens (MV2 speaks of the handle only; NT checks
        // the section's protection too). Such requests are not made.
        if let Some(&(sid, hacc)) = self.m.handles.get(&hv) {
            let sp = self.m.sec(sid).prot;
            if view_protection_ok(prot) && may_map(hacc, prot) && !may_map(create_access(sp), prot)
            {
                self.skipped_maps += 1;
                count("skipped: map beyond the section's protection", 0);
                return;
            }
        }
        let what = match api {
            MapApi::Plain => format!("MapViewOfFile({hv:#x}, {access:#x}, {offset:#x}, {size:#x})"),
            MapApi::FromApp => {
                format!("MapViewOfFileFromApp({hv:#x}, {access:#x}, {offset:#x}, {size:#x})")
            }
            MapApi::Ex => format!(
                "MapViewOfFileEx({hv:#x}, {access:#x}, {offset:#x}, {size:#x}, {:#x})",
                base.unwrap_or(0)
            ),
            MapApi::Three | MapApi::ThreeFromApp => format!(
                "MapViewOfFile3{}({hv:#x}, process {process_h:?}, {:#x}, {offset:#x}, {size:#x}, 0, {prot:#x})",
                if matches!(api, MapApi::ThreeFromApp) { "FromApp" } else { "" },
                base.unwrap_or(0)
            ),
        };
        self.log.push(what);
        let b = base.unwrap_or(0) as *const c_void;
        SetLastError(SENTINEL);
        // SAFETY: plain values; a base address is only ever in the test's arena.
        let r = unsafe {
            match api {
                MapApi::Plain => MapViewOfFile(
                    hv as HANDLE,
                    access,
                    (offset >> 32) as u32,
                    offset as u32,
                    size,
                ),
                MapApi::FromApp => MapViewOfFileFromApp(hv as HANDLE, access, offset as u64, size),
                MapApi::Ex => MapViewOfFileEx(
                    hv as HANDLE,
                    access,
                    (offset >> 32) as u32,
                    offset as u32,
                    size,
                    b,
                ),
                MapApi::Three => MapViewOfFile3(
                    hv as HANDLE,
                    process_h,
                    b,
                    offset as u64,
                    size,
                    0,
                    prot,
                    null_mut(),
                    0,
                ),
                MapApi::ThreeFromApp => MapViewOfFile3FromApp(
                    hv as HANDLE,
                    process_h,
                    b,
                    offset as u64,
                    size,
                    0,
                    prot,
                    null_mut(),
                    0,
                ),
            }
        }
        .Value as usize;
        let code = GetLastError();
        if r != 0 {
            self.made_views.push(r);
        }
        self.verdict(&exp, r != 0, code, SENTINEL);
        let Ok((sid, pages)) = exp else { return };
        match base {
            Some(b) => assert_eq!(
                r,
                b,
                "{}",
                self.fail_msg("MV6: the view is not at the address asked for".into())
            ),
            None => assert!(
                r % G == 0 && self.m.range_free(r, r + pages * P),
                "{}",
                self.fail_msg(format!("MV5: the system placed the view at {r:#x}"))
            ),
        }
        let s = self.m.sec_mut(sid);
        s.views += 1;
        self.m.views.push(View {
            base: r,
            sec: sid,
            off: offset / P,
            ap: prot,
            pages: vec![
                VPage {
                    prot,
                    copy: None,
                    wc_copy: false,
                };
                pages
            ],
        });
        self.log.last_mut().unwrap().push_str(&format!(" = {r:#x}"));
    }

    fn unmap(&mut self, at: &At, api: u8, flags: u32) {
        let addr = self.addr(at);
        self.log.push(format!(
            "UnmapViewOfFile#{api}({addr:#x}, flags {flags:#x})"
        ));
        let exp: Expect<usize> = (|| {
            let flags_bad = api != 0
                && flags & !(MEM_UNMAP_WITH_TRANSIENT_BOOST | MEM_PRESERVE_PLACEHOLDER) != 0;
            if api == 3 {
                // U6: NULL is not the current process (the order against U5 is not given).
                return Err(if flags_bad {
                    vec![(6, "U6"), (87, "U5")]
                } else {
                    vec![(6, "U6")]
                });
            }
            if flags_bad {
                return fail(87, "U5");
            }
            let Some(i) = self.m.view_at(addr) else {
                return fail(487, "U2");
            };
            if api != 0 && flags & MEM_PRESERVE_PLACEHOLDER != 0 {
                return fail(487, "U7");
            }
            Ok(i)
        })();
        SetLastError(SENTINEL);
        let a = MEMORY_MAPPED_VIEW_ADDRESS { Value: addr as _ };
        // SAFETY: unmapping is refused for anything but a view.
        let ok = unsafe {
            match api {
                0 => UnmapViewOfFile(a),
                1 => UnmapViewOfFileEx(a, flags),
                2 => UnmapViewOfFile2(GetCurrentProcess(), a, flags),
                _ => UnmapViewOfFile2(null_mut(), a, flags),
            }
        } != 0;
        let code = GetLastError();
        self.verdict(&exp, ok, code, SENTINEL);
        let Ok(i) = exp else { return };
        let v = self.m.views.remove(i);
        self.m.sec_mut(v.sec).views -= 1;
        self.m.maybe_destroy(v.sec);
        // U3: the range is free (unless something else was mapped there since).
        let m = maps();
        if vma_at(&m, v.base).is_none() {
            let q = query(v.base).expect("VirtualQuery of free memory");
            assert!(
                q.State == MEM_FREE
                    && q.Protect == PAGE_NOACCESS
                    && q.AllocationBase.is_null()
                    && q.AllocationProtect == 0
                    && q.Type == 0
                    && q.BaseAddress as usize == v.base,
                "{}",
                self.fail_msg(format!(
                    "U3: after the unmap VirtualQuery says {:x?}",
                    fields(&q)
                ))
            );
        }
    }

    /// KNOWN engine bug (see `known_protect_back_to_writecopy_keeps_the_copy`): a copied page
    /// whose protection is no longer copy-on-write loses its private copy when it is made
    /// copy-on-write again. With `avoid_known`, such requests are not made.
    fn known_copy_loss(&self, addr: usize, size: usize, prot: u32) -> bool {
        if !self.avoid_known || !is_wc(prot) || size == 0 || size > MAX_SECTION {
            return false;
        }
        let (s, e, vi) = self.view_range(addr, size);
        let Some(i) = vi else { return false };
        let v = &self.m.views[i];
        let hit = ((s - v.base) / P..(e - v.base) / P).any(|k| {
            v.pages[k].copy.is_some() && !is_wc(v.pages[k].prot) && self.m.committed(v, k)
        });
        if hit {
            count("skipped: KNOWN copy loss", 0);
        }
        hit
    }

    /// The page range `[floor(addr), ceil(addr + size))` and the view holding all of it.
    fn view_range(&self, addr: usize, size: usize) -> (usize, usize, Option<usize>) {
        let s = addr & !(P - 1);
        let e = (addr + size + P - 1) & !(P - 1);
        let v = self.m.view_at(s).filter(|&i| e <= self.m.views[i].end());
        (s, e, v)
    }

    fn commit(&mut self, at: &At, size: usize, prot: u32) {
        if matches!(at, At::Private | At::Null) {
            // Private memory is model.rs's business; MEM_COMMIT at NULL reserves.
            return;
        }
        let addr = self.addr(at);
        if self.known_copy_loss(addr, size, prot) {
            return;
        }
        self.log.push(format!(
            "VirtualAlloc({addr:#x}, {size:#x}, MEM_COMMIT, {prot:#x})"
        ));
        let (s, e, vi) = self.view_range(addr, size);
        let exp: Expect<usize> = (|| {
            if size == 0 {
                return fail(87, "§2 (size 0)");
            }
            let Some(p) = parse_protect(prot, true) else {
                return fail(87, "VA2 (invalid protection)");
            };
            if prot & !0xFF != 0 {
                unreachable!("no modifiers are asked for");
            }
            let in_view = self.m.view_at(s);
            let Some(i) = vi else {
                if in_view.is_none() && is_wc(p) {
                    // Copy-on-write outside views (semantics.md §2) vs. free memory (487).
                    return Err(vec![(87, "§2 WRITECOPY"), (487, "VA4")]);
                }
                if let Some(i) = in_view {
                    if !compatible(p, self.m.views[i].ap) {
                        return Err(vec![(87, "VA2"), (487, "VA4")]);
                    }
                }
                return fail(487, "VA4");
            };
            if !compatible(p, self.m.views[i].ap) {
                return fail(87, "VA2 (incompatible)");
            }
            Ok(i)
        })();
        SetLastError(SENTINEL);
        // SAFETY: committing is refused outside views and allocations.
        let r = unsafe { VirtualAlloc(addr as _, size, MEM_COMMIT, prot) } as usize;
        let code = GetLastError();
        self.verdict(&exp, r != 0, code, SENTINEL);
        let Ok(i) = exp else { return };
        assert_eq!(
            r,
            s,
            "{}",
            self.fail_msg("VA2: the return value is the page-rounded base".into())
        );
        let p = parse_protect(prot, true).unwrap();
        let v = &self.m.views[i];
        let (sid, first) = (v.sec, (s - v.base) / P);
        let mut newly = Vec::new();
        for k in first..(e - v.base) / P {
            let sp = v.off + k;
            if !self.m.sec(sid).committed[sp] {
                newly.push(sp);
            }
        }
        for &sp in &newly {
            self.m.sec_mut(sid).committed[sp] = true;
        }
        let v = &mut self.m.views[i];
        for k in first..(e - v.base) / P {
            let pg = &mut v.pages[k];
            // VA2: the protection is set in this view, also for committed pages; a page that
            // has its private copy cannot become copy-on-write again (CW4 with CW1).
            pg.wc_copy = pg.copy.is_some() && is_wc(p);
            pg.prot = if pg.copy.is_some() { after_copy(p) } else { p };
        }
        self.m.spread_commit(sid, &newly, Some(i));
    }

    fn protect(&mut self, at: &At, size: usize, prot: u32, null_old: bool) {
        let addr = self.addr(at);
        if matches!(at, At::Private) && !is_wc(prot) {
            return; // private memory is model.rs's business
        }
        if let Some(i) = self.m.view_at(addr & !(P - 1)) {
            if self.m.sec(self.m.views[i].sec).mods != 0 && prot & PAGE_GUARD != 0 {
                return; // PAGE_GUARD with SEC_NOCACHE / SEC_WRITECOMBINE: not specified
            }
        }
        if self.known_copy_loss(addr, size, prot) {
            return;
        }
        self.log.push(format!(
            "VirtualProtect({addr:#x}, {size:#x}, {prot:#x}, null_old {null_old})"
        ));
        let (s, e, vi) = self.view_range(addr, size);
        let exp: Expect<(usize, u32)> = (|| {
            let Some(p) = parse_protect(prot, true) else {
                return fail(87, "§4 (invalid protection)");
            };
            if is_wc(p) && self.m.view_at(s).is_none() {
                let mut e = vec![(87, "§4 WRITECOPY on private memory"), (487, "§4")];
                if null_old {
                    e.push((998, "§4"));
                }
                return Err(e);
            }
            if null_old {
                return if size == 0 {
                    Err(vec![(998, "§4"), (87, "§4 (size 0)")])
                } else {
                    fail(998, "§4 (lpflOldProtect NULL)")
                };
            }
            if size == 0 {
                return fail(87, "§4 (size 0)");
            }
            let in_view = self.m.view_at(s);
            let Some(i) = vi else {
                if let Some(i) = in_view {
                    if !compatible(p, self.m.views[i].ap) {
                        return Err(vec![(87, "VP1"), (487, "VP3")]);
                    }
                }
                return fail(487, "VP3 (range leaves the view)");
            };
            let v = &self.m.views[i];
            let first = (s - v.base) / P;
            let last = (e - v.base) / P;
            let all_committed = (first..last).all(|k| self.m.committed(v, k));
            match (compatible(p, v.ap), all_committed) {
                (true, true) => {}
                (false, true) => return fail(87, "VP1"),
                (true, false) => return fail(487, "VP3 (reserved pages)"),
                (false, false) => return Err(vec![(87, "VP1"), (487, "VP3")]),
            }
            Ok((i, self.m.page_state(v, first).1))
        })();
        let mut old = 0xDEAD_BEEFu32;
        SetLastError(SENTINEL);
        // SAFETY: `old` is a valid out-pointer (or NULL on purpose).
        let ok = unsafe {
            VirtualProtect(
                addr as _,
                size,
                prot,
                if null_old { null_mut() } else { &mut old },
            )
        } != 0;
        let code = GetLastError();
        self.verdict(&exp, ok, code, SENTINEL);
        if !ok && code == 487 && !null_old {
            assert_eq!(
                old,
                PAGE_NOACCESS,
                "{}",
                self.fail_msg("§4: *lpflOldProtect after a failure".into())
            );
        }
        let Ok((i, want_old)) = exp else { return };
        assert_eq!(
            old,
            want_old,
            "{}",
            self.fail_msg(format!(
                "VP2: *lpflOldProtect is {old:#x}, expected {want_old:#x}"
            ))
        );
        let p = parse_protect(prot, true).unwrap();
        let v = &mut self.m.views[i];
        for k in (s - v.base) / P..(e - v.base) / P {
            let pg = &mut v.pages[k];
            pg.wc_copy = pg.copy.is_some() && is_wc(p);
            pg.prot = if pg.copy.is_some() { after_copy(p) } else { p };
        }
    }

    fn free(&mut self, at: &At, size: usize, t: u32) {
        if !matches!(at, At::View { .. }) || self.m.views.is_empty() {
            return;
        }
        let addr = self.addr(at);
        if self.m.view_at(addr).is_none() {
            return;
        }
        self.log
            .push(format!("VirtualFree({addr:#x}, {size:#x}, {t:#x})"));
        let exp: Expect<()> = fail(87, "VF1/VF2");
        SetLastError(SENTINEL);
        // SAFETY: refused for views.
        let ok = unsafe { VirtualFree(addr as _, size, t) } != 0;
        let code = GetLastError();
        self.verdict(&exp, ok, code, SENTINEL);
    }

    fn reset(&mut self, at: &At, size: usize, prot: u32) {
        if matches!(at, At::Private) {
            return;
        }
        let addr = self.addr(at);
        self.log.push(format!(
            "VirtualAlloc({addr:#x}, {size:#x}, MEM_RESET, {prot:#x})"
        ));
        let (s, e, vi) = self.view_range(addr, size);
        let exp: Expect<usize> = (|| {
            if size == 0 {
                return fail(87, "§2 (size 0)");
            }
            if parse_protect(prot, false).is_none() {
                return fail(87, "§2 (MEM_RESET needs a valid protection)");
            }
            if addr == 0 {
                return fail(87, "§2 (MEM_RESET at NULL)");
            }
            vi.map_or_else(|| fail(487, "§2 (one allocation)"), Ok)
        })();
        SetLastError(SENTINEL);
        // SAFETY: MEM_RESET only discards contents, inside a view.
        let r = unsafe { VirtualAlloc(addr as _, size, MEM_RESET, prot) } as usize;
        let code = GetLastError();
        self.verdict(&exp, r != 0, code, SENTINEL);
        let Ok(i) = exp else { return };
        assert_eq!(
            r,
            s,
            "{}",
            self.fail_msg("RS1: MEM_RESET returns the page-rounded address".into())
        );
        // RS1: the contents become undefined: the model allows zero from now on.
        let v = self.m.views[i].clone();
        for k in (s - v.base) / P..(e - v.base) / P {
            if !self.m.committed(&v, k) {
                continue;
            }
            match &mut self.m.views[i].pages[k].copy {
                Some(c) => c.reset(),
                None => self.m.sec_mut(v.sec).data[v.off + k].reset(),
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Data
    // ---------------------------------------------------------------------------------------

    fn pick_page(&self, v: u8, page: u8) -> Option<(usize, usize)> {
        if self.m.views.is_empty() {
            return None;
        }
        let i = v as usize % self.m.views.len();
        Some((i, page as usize % self.m.views[i].pages.len()))
    }

    fn write(&mut self, v: u8, page: u8, off: usize, len: usize, val: u8) {
        let Some((i, k)) = self.pick_page(v, page) else {
            return;
        };
        let view = &self.m.views[i];
        let (state, prot) = self.m.page_state(view, k);
        if state != MEM_COMMIT || !writable(prot) {
            return;
        }
        let off = off.min(P - 1);
        let len = len.min(P - off);
        let bytes: Vec<u8> = (0..len).map(|j| val.wrapping_add(j as u8) | 1).collect();
        let at = view.base + k * P + off;
        self.log.push(format!(
            "write {len} bytes {val:#x}.. at {at:#x} ({prot:#x})"
        ));
        count(
            if pg_is_copied(&self.m.views[i].pages[k]) {
                "write (private copy)"
            } else if is_wc(prot) {
                "write (first copy-on-write)"
            } else {
                "write (shared)"
            },
            0,
        );
        // SAFETY: the model (checked against /proc/self/maps after the last step) says the
        // page is committed and writable.
        unsafe {
            for (j, b) in bytes.iter().enumerate() {
                ((at + j) as *mut u8).write_volatile(*b);
            }
        }
        let view = &mut self.m.views[i];
        let sid = view.sec;
        let sp = view.off + k;
        let pg = &mut view.pages[k];
        if let Some(c) = &mut pg.copy {
            c.write(off, &bytes);
        } else if is_wc(pg.prot) {
            // CW1: the first write gives this view a private copy; the page turns read-write.
            let mut c = self.m.sections[sid].as_ref().unwrap().data[sp].clone();
            c.write(off, &bytes);
            pg.copy = Some(c);
            pg.wc_copy = true;
            pg.prot = after_copy(pg.prot);
        } else {
            self.m.sec_mut(sid).data[sp].write(off, &bytes);
        }
    }

    fn read(&mut self, v: u8, page: u8, off: usize, len: usize) {
        let Some((i, k)) = self.pick_page(v, page) else {
            return;
        };
        let view = &self.m.views[i];
        let (state, prot) = self.m.page_state(view, k);
        if state != MEM_COMMIT || !readable(prot) {
            return;
        }
        let off = off.min(P - 1);
        let len = len.min(P - off);
        let at = view.base + k * P + off;
        self.log
            .push(format!("read {len} bytes at {at:#x} ({prot:#x})"));
        count("read", 0);
        // SAFETY: committed and readable, as the model and the kernel agree.
        let got = unsafe { std::slice::from_raw_parts(at as *const u8, len) };
        assert!(
            self.m.content(view, k).matches(off, got),
            "{}",
            self.fail_msg(format!(
                "O2/CW2: the bytes read at {at:#x} are not the model's"
            ))
        );
    }

    fn query_op(&mut self, at: &At) {
        if matches!(at, At::Private) {
            return;
        }
        let addr = self.addr(at);
        self.log.push(format!("VirtualQuery({addr:#x})"));
        let q = query(addr)
            .unwrap_or_else(|| panic!("{}", self.fail_msg("VirtualQuery failed".into())));
        match self.m.view_at(addr) {
            Some(i) => {
                let v = &self.m.views[i];
                let k = (addr - v.base) / P;
                let want = self.expected_region(v, k);
                self.compare_region(&q, &want);
            }
            None if addr >= self.arena && addr < self.arena + ARENA_SIZE => {
                // Free arena memory: up to the next view or allocation.
                let pg = addr & !(P - 1);
                let next = self
                    .m
                    .views
                    .iter()
                    .map(|v| v.base)
                    .chain([self.m.private])
                    .filter(|&b| b > pg)
                    .min()
                    .unwrap();
                assert!(
                    q.State == MEM_FREE
                        && q.Protect == PAGE_NOACCESS
                        && q.BaseAddress as usize == pg
                        && q.RegionSize == next - pg
                        && q.Type == 0
                        && q.AllocationBase.is_null(),
                    "{}",
                    self.fail_msg(format!(
                        "§5: free memory at {pg:#x} (next allocation {next:#x}): {:x?}",
                        fields(&q)
                    ))
                );
            }
            None => {}
        }
    }

    // ---------------------------------------------------------------------------------------
    // Checks after every step
    // ---------------------------------------------------------------------------------------

    /// VQ1: the region VirtualQuery reports from page `k` of `v`.
    fn expected_region(&self, v: &View, k: usize) -> MEMORY_BASIC_INFORMATION {
        // VQ1: State and Protect decide; with `avoid_known` also whether a read-write page is
        // a written copy-on-write page (the KNOWN split).
        let key = |i: usize| {
            let (st, pr) = self.m.page_state(v, i);
            (
                st,
                pr,
                self.avoid_known && st == MEM_COMMIT && v.pages[i].wc_copy,
            )
        };
        let (state, prot) = self.m.page_state(v, k);
        let first = key(k);
        let mut n = 1;
        while k + n < v.pages.len() && key(k + n) == first {
            n += 1;
        }
        MEMORY_BASIC_INFORMATION {
            BaseAddress: (v.base + k * P) as _,
            AllocationBase: v.base as _,
            AllocationProtect: v.ap | self.m.sec(v.sec).mods,
            RegionSize: n * P,
            State: state,
            Protect: prot,
            Type: MEM_MAPPED,
            ..Default::default()
        }
    }

    fn compare_region(&self, got: &MEMORY_BASIC_INFORMATION, want: &MEMORY_BASIC_INFORMATION) {
        let f = fields;
        if f(got) != f(want) {
            panic!(
                "{}",
                self.fail_msg(format!(
                    "VQ1 (VQ2, VQ3, CW1): VirtualQuery({:#x}) reports\n      (base, AB, AP, State, Protect, RS, Type) = {:x?}\n    the model expects {:x?}",
                    want.BaseAddress as usize,
                    f(got),
                    f(want)
                ))
            );
        }
    }

    fn check(&self) {
        // (b) VirtualQuery, region by region.
        for v in &self.m.views {
            let mut k = 0;
            while k < v.pages.len() {
                let want = self.expected_region(v, k);
                let got = query(v.base + k * P)
                    .unwrap_or_else(|| panic!("{}", self.fail_msg("VirtualQuery failed".into())));
                self.compare_region(&got, &want);
                k += want.RegionSize / P;
            }
        }
        // (c) The kernel's mappings.
        let m = maps();
        for v in &self.m.views {
            for k in 0..v.pages.len() {
                let pg = v.base + k * P;
                let Some(vma) = vma_at(&m, pg) else {
                    panic!(
                        "{}",
                        self.fail_msg(format!(
                            "page {pg:#x} of the view {:#x} is not mapped",
                            v.base
                        ))
                    )
                };
                let got = std::str::from_utf8(&vma.perms).unwrap();
                let (state, prot) = self.m.page_state(v, k);
                let ok = if state != MEM_COMMIT {
                    &got[..3] == "---"
                } else {
                    // Private (MAP_PRIVATE) exactly when copy-on-write or copied. In a view
                    // that can never be written through (its protection has no write access),
                    // a read-only page reads the section's page either way: `p` is allowed.
                    let share = if v.pages[k].copy.is_some() || is_wc(prot) {
                        'p'
                    } else {
                        's'
                    };
                    let either = !class(v.ap).1 && !writable(prot);
                    kernel_perms(prot).contains(&&got[..3]) && (got.ends_with(share) || either)
                };
                assert!(
                    ok,
                    "{}",
                    self.fail_msg(format!(
                        "§18: page {pg:#x} (view {:#x}, {}, protect {prot:#x}, copied {}) is mapped {got}",
                        v.base,
                        if state == MEM_COMMIT { "committed" } else { "reserved" },
                        v.pages[k].copy.is_some()
                    ))
                );
                assert!(
                    vma.path.contains(MEMFD),
                    "{}",
                    self.fail_msg(format!(
                        "page {pg:#x} of a view maps {:?}, not the section",
                        vma.path
                    ))
                );
            }
        }
        for vma in m.iter().filter(|x| x.path.contains(MEMFD)) {
            for pg in (vma.start..vma.end).step_by(P) {
                assert!(
                    self.m.view_at(pg).is_some(),
                    "{}",
                    self.fail_msg(format!(
                        "U1/U3: {pg:#x} still maps a section but is in no view"
                    ))
                );
            }
        }
        // (d) Contents.
        for v in &self.m.views {
            for k in 0..v.pages.len() {
                let (state, prot) = self.m.page_state(v, k);
                if state == MEM_COMMIT && readable(prot) {
                    // SAFETY: committed and readable (the kernel agrees, checked above).
                    let got =
                        unsafe { std::slice::from_raw_parts((v.base + k * P) as *const u8, P) };
                    assert!(
                        self.m.content(v, k).matches(0, got),
                        "{}",
                        self.fail_msg(format!(
                            "O2/CW1/CW2: the page {:#x} (view {:#x}, section page {}) holds other bytes than the model's",
                            v.base + k * P,
                            v.base,
                            v.off + k
                        ))
                    );
                }
            }
        }
        // (e) One memfd per live section (O3, U4).
        let (_, memfds) = fds();
        assert_eq!(
            memfds,
            self.m.live_sections(),
            "{}",
            self.fail_msg("O3/U4: section memfds open vs. live sections of the model".into())
        );
    }

    fn finish(&mut self) {
        for v in std::mem::take(&mut self.m.views) {
            // SAFETY: our view.
            let ok = unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v.base as _ }) };
            assert_ne!(
                ok,
                0,
                "{}",
                self.fail_msg(format!("unmapping {:#x}", v.base))
            );
            self.m.sec_mut(v.sec).views -= 1;
            self.m.maybe_destroy(v.sec);
        }
        for (h, (sid, _)) in std::mem::take(&mut self.m.handles) {
            // SAFETY: our handle.
            let ok = unsafe { CloseHandle(h as HANDLE) };
            assert_ne!(ok, 0, "{}", self.fail_msg(format!("closing {h:#x}")));
            self.m.sec_mut(sid).handles -= 1;
            self.m.maybe_destroy(sid);
        }
        assert_eq!(self.m.live_sections(), 0);
        self.made_views.clear();
        self.made_handles.clear();
        self.check();
        let m = maps();
        assert!(
            !m.iter().any(|v| v.path.contains(MEMFD)),
            "{}",
            self.fail_msg("a section is still mapped after everything was unmapped".into())
        );
        let (all, memfds) = fds();
        assert_eq!(
            memfds,
            0,
            "{}",
            self.fail_msg("a section memfd leaked".into())
        );
        assert_eq!(
            all,
            self.fds_before,
            "{}",
            self.fail_msg("a descriptor leaked (now vs. at the start)".into())
        );
    }
}

/// How many calls of each kind succeeded and failed (as predicted), over the whole run.
static COUNTS: Mutex<BTreeMap<String, [u64; 2]>> = Mutex::new(BTreeMap::new());

fn count(what: &str, i: usize) {
    COUNTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(what.to_string())
        .or_default()[i] += 1;
}

fn env_num(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The first call of a process opens descriptors virtmem keeps (e.g. the fault handler's): a
/// warm-up sequence, so each case's descriptor count starts from the steady state.
fn warm_up() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let _s = serial();
        // SAFETY: a section, a view, a query and a commit of our own, all undone.
        unsafe {
            let h = CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                std::ptr::null(),
                PAGE_READWRITE | SEC_RESERVE,
                0,
                0x2000,
                std::ptr::null(),
            );
            assert!(!h.is_null());
            let v = MapViewOfFile(h, FILE_MAP_COPY, 0, 0, 0).Value;
            assert!(!v.is_null());
            assert!(!VirtualAlloc(v, 0x1000, MEM_COMMIT, PAGE_WRITECOPY).is_null());
            *(v as *mut u8) = 1;
            let _ = query(v as usize);
            let mut old = 0;
            VirtualProtect(v, 0x1000, PAGE_READONLY, &mut old);
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v });
            CloseHandle(h);
            // Memory virtmem did not allocate: answered from the kernel's maps.
            let free = arena();
            let _ = query(free);
            VirtualProtect(free as _, 0x1000, PAGE_READWRITE, &mut old);
            VirtualAlloc(free as _, 0x1000, MEM_RESET, PAGE_READWRITE);
        }
    });
}

fn run_sequence(ops: &[Op], strict: bool) -> usize {
    warm_up();
    let mut h = Harness::new();
    h.avoid_known = !strict;
    h.check();
    for op in ops {
        h.run(op);
        h.check();
    }
    h.finish();
    h.skipped_maps
}

/// Runs the property: `strict` also makes the requests that meet KNOWN engine bugs and
/// compares regions by State and Protect alone (VQ1).
fn property(strict: bool) {
    let config = Config {
        cases: env_num("PROPTEST_CASES", 256),
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        max_shrink_iters: 8192,
        ..Config::default()
    };
    let steps = env_num("SECTIONS_MODEL_STEPS", 40) as usize;
    // A fixed seed by default (the same cases on every run); `SECTIONS_MODEL_SEED=N` for
    // others, `SECTIONS_MODEL_SEED=random` for a new one each run.
    let seed = match std::env::var("SECTIONS_MODEL_SEED").ok().as_deref() {
        Some("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
        Some(s) => s
            .parse()
            .expect("SECTIONS_MODEL_SEED: a number or `random`"),
        None => 0x5EC7_1075,
    };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = proptest::test_runner::TestRng::from_seed(
        proptest::test_runner::RngAlgorithm::ChaCha,
        &bytes,
    );
    let t0 = std::time::Instant::now();
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(config.clone(), rng);
    let r = runner.run(&sequence_strategy(steps), |ops| {
        run_sequence(&ops, strict);
        Ok(())
    });
    let counts = COUNTS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    eprintln!(
        "sections model{}: seed {seed}, {} cases of up to {steps} steps in {:.1} s; calls (succeeded, failed as predicted):",
        if strict { " (strict)" } else { "" },
        config.cases,
        t0.elapsed().as_secs_f64()
    );
    for (k, [ok, failed]) in &counts {
        eprintln!("  {k:<48} {ok:>6} {failed:>6}");
    }
    if let Err(e) = r {
        panic!("seed {seed}: {e}");
    }
}

#[test]
fn random_sequences_match_the_model() {
    property(true);
}

// ------------------------------------------------------------------------------------------
// Disagreements the property found (now fixed), as minimal reproducers, shrunk by hand
// ------------------------------------------------------------------------------------------

fn rw_section(size: usize) -> HANDLE {
    // SAFETY: an unnamed pagefile section.
    let h = unsafe {
        CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            std::ptr::null(),
            PAGE_READWRITE,
            0,
            size as u32,
            std::ptr::null(),
        )
    };
    assert!(!h.is_null());
    h
}

/// CW1/CW2: a page's private copy belongs to the view until it is unmapped. A copied page
/// whose protection is changed to a non-copy-on-write one and then back to PAGE_WRITECOPY is
/// mapped from the section again: the engine's `apply_view_table` asks the kernel which pages
/// are copies only when the *old* protection is copy-on-write, so it takes the copied
/// PAGE_READONLY page for a shared one and remaps it `MAP_PRIVATE` from the memfd, discarding
/// the copy (the bytes written through the view are gone, and VirtualQuery says
/// PAGE_WRITECOPY again).
#[test]
fn protect_back_to_writecopy_keeps_the_copy() {
    let _s = serial();
    let h = rw_section(0x2000);
    // SAFETY: a view of our section; accesses only where its protection allows.
    unsafe {
        let v = MapViewOfFile(h, FILE_MAP_COPY, 0, 0, 0).Value as *mut u8;
        assert!(!v.is_null());
        *v = 7; // the private copy (CW1): PAGE_READWRITE now
        let mut old = 0;
        assert_eq!(VirtualProtect(v.cast(), P, PAGE_READONLY, &mut old), TRUE);
        assert_eq!(old, PAGE_READWRITE);
        assert_eq!(VirtualProtect(v.cast(), P, PAGE_WRITECOPY, &mut old), TRUE);
        assert_eq!(old, PAGE_READONLY);
        let kept = *v;
        let prot = query(v as usize).unwrap().Protect;
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v.cast() });
        CloseHandle(h);
        assert_eq!(kept, 7, "CW2: the view's private copy was discarded");
        // The page still has its copy: it cannot be copy-on-write again [I: NT].
        assert_eq!(prot, PAGE_READWRITE);
    }
}

/// VQ1: a region runs while State and Protect stay the same. A written copy-on-write page
/// reports PAGE_READWRITE (CW1), like its PAGE_READWRITE neighbours, but the engine's
/// `view_region` groups pages by the protection it stores (PAGE_WRITECOPY) and reports the
/// copied page as a region of its own.
#[test]
fn copied_page_merges_with_read_write_neighbours() {
    let _s = serial();
    let h = rw_section(0x4000);
    // SAFETY: a view of our section; accesses only where its protection allows.
    unsafe {
        let v = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0).Value as *mut u8;
        assert!(!v.is_null());
        let mut old = 0;
        assert_eq!(
            VirtualProtect(v.add(P).cast(), P, PAGE_WRITECOPY, &mut old),
            TRUE
        );
        *v.add(P) = 1; // copied: PAGE_READWRITE, as pages 0, 2 and 3
        let q = query(v as usize).unwrap();
        let q1 = query(v as usize + P).unwrap();
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v.cast() });
        CloseHandle(h);
        assert_eq!(q1.Protect, PAGE_READWRITE, "CW1");
        assert_eq!(
            (q.Protect, q.RegionSize),
            (PAGE_READWRITE, 0x4000),
            "VQ1: four PAGE_READWRITE pages are one region"
        );
    }
}

/// OC1: VirtualLock works on view pages as on private memory; locking reads nothing and
/// writes nothing, so a copy-on-write page stays shared (PAGE_WRITECOPY) and keeps showing
/// the section's data. `mlock` of a writable `MAP_PRIVATE` mapping faults its pages in for
/// writing, which breaks copy-on-write: every locked page becomes a private copy.
#[test]
fn lock_keeps_copy_on_write_pages_shared() {
    let _s = serial();
    let h = rw_section(0x2000);
    // SAFETY: views of our section; accesses only where their protection allows.
    unsafe {
        let w = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0).Value as *mut u8;
        let c = MapViewOfFile(h, FILE_MAP_COPY, 0, 0, 0).Value as *mut u8;
        assert!(!w.is_null() && !c.is_null());
        let locked = VirtualLock(c.cast(), 0x2000);
        let err = GetLastError();
        let prot = query(c as usize).unwrap().Protect;
        *w = 5;
        let seen = *c;
        if locked != 0 {
            VirtualUnlock(c.cast(), 0x2000);
        }
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: w.cast() });
        UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: c.cast() });
        CloseHandle(h);
        assert_ne!(locked, 0, "OC1: VirtualLock failed with {err}");
        assert_eq!(prot, PAGE_WRITECOPY, "OC1: locking wrote to the page");
        assert_eq!(
            seen, 5,
            "O2: the unwritten copy-on-write page shows the section's data"
        );
    }
}

/// M3-7: a HighestEndingAddress that is not one less than a page multiple or lies above
/// lpMaximumApplicationAddress → 87, also usize::MAX (whose `+ 1` once overflowed: 1359 in
/// debug builds).
#[test]
fn map_view3_highest_address_max_is_87() {
    let _s = serial();
    let h = rw_section(0x1000);
    let mut req = MEM_ADDRESS_REQUIREMENTS {
        LowestStartingAddress: null_mut(),
        HighestEndingAddress: usize::MAX as *mut c_void,
        Alignment: 0,
    };
    let mut param = MEM_EXTENDED_PARAMETER::default();
    param.Anonymous1._bitfield = 1; // MemExtendedParameterAddressRequirements
    param.Anonymous2.Pointer = &mut req as *mut _ as *mut c_void;
    // SAFETY: one valid parameter; the view is unmapped at once if it was made.
    unsafe {
        SetLastError(SENTINEL);
        let v = MapViewOfFile3(
            h,
            null_mut(),
            std::ptr::null(),
            0,
            0,
            0,
            PAGE_READWRITE,
            &mut param,
            1,
        )
        .Value;
        let code = GetLastError();
        if !v.is_null() {
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v });
        }
        CloseHandle(h);
        assert!(v.is_null(), "M3-7: the view was mapped");
        assert_eq!(code, 87, "M3-7");
    }
}
