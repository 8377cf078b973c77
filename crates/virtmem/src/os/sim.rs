//! A simulated address space: the same engine, no real memory, fully deterministic.
//!
//! [`SimOs`] keeps its own "kernel": a map of mappings with their protections, and the
//! contents of the pages that were ever written (sparsely: a page never written reads as
//! zero). Nothing it does touches this process's memory, so a simulated 32-bit process can
//! reserve `0x40000000` whatever the host has there.
//!
//! * Placement is deterministic: [`Placement::Anywhere`] is bottom-up first fit from the
//!   lowest allowed address, [`Placement::TopDown`] the highest fit.
//! * Fresh mappings read as zero; contents are dropped when a range is replaced (decommit) or
//!   unmapped (release).
//! * Kernel write tracking is simulated: [`SimOs::watch_supported`] is true and every
//!   [`Os::sim_write`] into a registered range records its pages.
//! * MEM_RESET / MEM_RESET_UNDO: by default the simulated machine has no memory pressure, so
//!   lazily freed pages keep their data and MEM_RESET_UNDO always finds them intact;
//!   [`SimOs::set_discard_on_reset`] makes MEM_RESET discard at once (MEM_RESET_UNDO then
//!   reports the loss).
//! * Memory accesses are simulated by [`crate::Space::read`] and [`crate::Space::write`],
//!   which check this backend's protections and raise guard-page and write-watch faults the
//!   way the signal handler does on real memory ([`Os::simulated_faults`]).
//!
//! ## Sections
//!
//! A section's backing object (the memfd of real memory) is a [`SectionStore`] entry: a
//! sparse byte store in chunks of the creating process's page size (a chunk never written
//! reads as zero), its size, and its *allocated* ranges (what `fallocate` allocated: the
//! commits of a SEC_RESERVE section, which only those ranges record). The store
//! belongs to the simulated *machine*: [`SimOs::with_store`] lets several simulated processes
//! share one, so their views show the same bytes.
//!
//! * A view ([`Os::map_view`], [`Os::remap_view`]) is a mapping that records its backing
//!   object, the backing offset of its first byte and whether it is private. It is placed by
//!   the same rules as [`Os::map`].
//! * A shared view reads and writes the backing object's chunks. A private (copy-on-write)
//!   view reads them until a page is first written; the write gives the page a private copy
//!   in this process ([`Os::copied`] then reports it), which later writes change and nobody
//!   else sees.
//! * [`Os::remap_view`] is `MAP_FIXED`: the range's old contents (private copies included)
//!   are gone. The engine never remaps a copied page (it stays private, only its protection
//!   changes), so copies survive every protection change.
//! * A backing object lives while a process has it open ([`Os::backing_new`], until
//!   [`Os::backing_close`]) or a view maps part of it; then its memory is freed.
//! * [`Os::backing_adopt_fd`] is not supported: the simulated machine has no files, so
//!   file-backed sections fail with ERROR_NOT_SUPPORTED (the faces say so before asking).
//!   [`SimOs::adopt_next`] is the simulator's way to open an existing backing object instead
//!   (a named section another simulated process created).

use super::{
    Backing, BackingId, ForeignMapping, HostProt, KernelRegion, Os, OsError, OsErrorKind,
    Placement, Syscall, UndoReport, ViewMap,
};
use crate::vocab::layout::Layout;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A 32-bit process with /LARGEADDRESSAWARE on a 32-bit Windows booted with /3GB:
/// `[0x10000, 0xBFFEFFFF]`.
pub const WIN32_3GB: Layout = Layout {
    max_address: 0xBFFE_FFFF,
    ..Layout::WIN32
};

/// The named layouts a simulated space can take: `win64`, `win32`, `win32-3gb`.
pub fn preset(name: &str) -> Option<Layout> {
    match name {
        "win64" => Some(Layout::WIN64),
        "win32" => Some(Layout::WIN32),
        "win32-3gb" => Some(WIN32_3GB),
        _ => None,
    }
}

/// The names [`preset`] knows.
pub const PRESETS: [&str; 3] = ["win32", "win64", "win32-3gb"];

/// Checks that a custom layout is consistent: page size and granularity powers of two
/// (page ≥ 512 bytes, granularity a multiple of the page), the minimum a multiple of the
/// granularity, `max_address + 1` a multiple of the granularity, and room for at least one
/// granule. Returns what is wrong.
pub fn check_layout(l: &Layout) -> Result<(), String> {
    if !l.page_size.is_power_of_two() || l.page_size < 512 {
        return Err(format!(
            "the page size {:#x} must be a power of two of at least 512 bytes",
            l.page_size
        ));
    }
    if !l.granularity.is_power_of_two() || l.granularity < l.page_size {
        return Err(format!(
            "the granularity {:#x} must be a power of two and a multiple of the page size",
            l.granularity
        ));
    }
    if l.min_address == 0 || l.min_address % l.granularity != 0 {
        return Err(format!(
            "the minimum address {:#x} must be a non-zero multiple of the granularity",
            l.min_address
        ));
    }
    let Some(top) = l.max_address.checked_add(1) else {
        return Err("the maximum address must leave room above it".into());
    };
    if top % l.granularity != 0 {
        return Err(format!(
            "the maximum address {:#x} must end a granule (max + 1 a multiple of {:#x})",
            l.max_address, l.granularity
        ));
    }
    if top < l.min_address + 2 * l.granularity {
        return Err("the user space must hold at least two granules".into());
    }
    if l.large_page_size != 0
        && (!l.large_page_size.is_power_of_two() || l.large_page_size % l.page_size != 0)
    {
        return Err(format!(
            "the large-page size {:#x} must be 0 or a power-of-two multiple of the page size",
            l.large_page_size
        ));
    }
    Ok(())
}

/// One simulated kernel mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Vma {
    prot: HostProt,
    backing: Backing,
    shared: bool,
    /// For a view of a section: what it maps.
    view: Option<ViewSeg>,
}

impl Vma {
    /// Fresh anonymous private memory with protection `prot`.
    const fn anonymous(prot: HostProt) -> Vma {
        Vma {
            prot,
            backing: Backing::Anonymous,
            shared: false,
            view: None,
        }
    }
}

/// What a view's mapping maps. The backing offset is stored relative to the address
/// (`offset - address`, wrapping), so the pieces of one view stay equal when the map splits
/// or merges them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ViewSeg {
    /// The backing object's number.
    backing: u64,
    /// Backing offset minus address (wrapping).
    delta: u64,
    /// Copy-on-write (`MAP_PRIVATE`).
    private: bool,
}

impl ViewSeg {
    /// The backing offset mapped at `addr`.
    fn offset_of(self, addr: usize) -> u64 {
        self.delta.wrapping_add(addr as u64)
    }
}

/// One backing object of a section.
#[derive(Debug)]
struct BackingObj {
    /// Size in bytes.
    size: u64,
    /// The chunk size of `chunks` (the creating process's page size).
    chunk: usize,
    /// Chunks ever written (chunk number → bytes); absent chunks read as zero.
    chunks: BTreeMap<u64, Box<[u8]>>,
    /// Allocated byte ranges (`fallocate`).
    allocated: IntervalMap<()>,
    /// Open references of all processes (`backing_new` minus `backing_close`).
    open: usize,
    /// Bytes of it mapped by views, in all processes.
    mapped: u64,
}

impl BackingObj {
    /// Copies `buf.len()` bytes from `offset` (zeros where nothing was written).
    fn read(&self, offset: u64, buf: &mut [u8]) {
        let c = self.chunk as u64;
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let (idx, off) = (at / c, (at % c) as usize);
            let n = (self.chunk - off).min(buf.len() - done);
            match self.chunks.get(&idx) {
                Some(b) => buf[done..done + n].copy_from_slice(&b[off..off + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
    }

    /// Stores `bytes` at `offset`.
    fn write(&mut self, offset: u64, bytes: &[u8]) {
        let c = self.chunk as u64;
        let mut done = 0;
        while done < bytes.len() {
            let at = offset + done as u64;
            let (idx, off) = (at / c, (at % c) as usize);
            let n = (self.chunk - off).min(bytes.len() - done);
            let chunk = self.chunk;
            let dst = self
                .chunks
                .entry(idx)
                .or_insert_with(|| vec![0; chunk].into_boxed_slice());
            dst[off..off + n].copy_from_slice(&bytes[done..done + n]);
            done += n;
        }
    }

    /// Changes the size; shrinking drops the chunks and allocations past the end.
    fn resize(&mut self, size: u64) {
        if size < self.size {
            let c = self.chunk as u64;
            let first_gone = size.div_ceil(c);
            let gone: Vec<u64> = self.chunks.range(first_gone..).map(|(&k, _)| k).collect();
            for k in gone {
                self.chunks.remove(&k);
            }
            // The tail of the last chunk reads as zero again.
            if let Some(b) = self.chunks.get_mut(&(size / c)) {
                b[(size % c) as usize..].fill(0);
            }
            self.allocated.set(size as usize, usize::MAX, None);
        }
        self.size = size;
    }
}

/// The section backing objects of a simulated machine, shared by the simulated processes
/// ([`SimOs`]) that run on it.
#[derive(Debug, Default)]
pub struct SectionStore {
    state: Mutex<StoreState>,
}

#[derive(Debug, Default)]
struct StoreState {
    /// The last number given out.
    last: u64,
    objs: BTreeMap<u64, BackingObj>,
}

impl SectionStore {
    /// An empty store.
    pub fn new() -> SectionStore {
        SectionStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StoreState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many backing objects exist.
    pub fn objects(&self) -> usize {
        self.lock().objs.len()
    }

    /// How many chunks (pages) of section contents are stored.
    pub fn stored_chunks(&self) -> usize {
        self.lock().objs.values().map(|o| o.chunks.len()).sum()
    }
}

impl StoreState {
    fn get(&self, b: u64) -> Result<&BackingObj, OsError> {
        self.objs.get(&b).ok_or(ebadf())
    }

    fn get_mut(&mut self, b: u64) -> Result<&mut BackingObj, OsError> {
        self.objs.get_mut(&b).ok_or(ebadf())
    }

    /// Frees the object if no process has it open and no view maps it.
    fn collect(&mut self, b: u64) {
        if self.objs.get(&b).is_some_and(|o| o.open == 0 && o.mapped == 0) {
            self.objs.remove(&b);
        }
    }
}

fn ebadf() -> OsError {
    serr(Syscall::Section, EBADF, OsErrorKind::Other)
}

/// Disjoint `[start, end)` segments with a value, adjacent equal segments merged.
#[derive(Clone, Debug)]
struct IntervalMap<V> {
    map: BTreeMap<usize, (usize, V)>,
}

impl<V> Default for IntervalMap<V> {
    fn default() -> Self {
        IntervalMap {
            map: BTreeMap::new(),
        }
    }
}

impl<V: Clone + PartialEq> IntervalMap<V> {
    /// The segment containing `addr`.
    fn get(&self, addr: usize) -> Option<(usize, usize, &V)> {
        let (&s, (e, v)) = self.map.range(..=addr).next_back()?;
        (addr < *e).then_some((s, *e, v))
    }

    /// Segments overlapping `[start, end)`, clipped to it, ascending.
    fn overlapping(&self, start: usize, end: usize) -> Vec<(usize, usize, V)> {
        let mut out = Vec::new();
        if start >= end {
            return out;
        }
        if let Some((_, (e, v))) = self.map.range(..start).next_back() {
            if *e > start {
                out.push((start, (*e).min(end), v.clone()));
            }
        }
        for (&s, (e, v)) in self.map.range(start..end) {
            out.push((s, (*e).min(end), v.clone()));
        }
        out
    }

    /// Whether every byte of `[start, end)` is covered.
    fn covers(&self, start: usize, end: usize) -> bool {
        let mut at = start;
        for (s, e, _) in self.overlapping(start, end) {
            if s > at {
                return false;
            }
            at = e;
        }
        at >= end
    }

    /// Whether any byte of `[start, end)` is covered.
    fn any(&self, start: usize, end: usize) -> bool {
        !self.overlapping(start, end).is_empty()
    }

    /// Sets `[start, end)` to `v` (or removes it with `None`).
    fn set(&mut self, start: usize, end: usize, v: Option<V>) {
        if start >= end {
            return;
        }
        // Split the segment straddling `start`.
        if let Some((&s, (e, old))) = self.map.range(..start).next_back() {
            let (e, old) = (*e, old.clone());
            if e > start {
                self.map.insert(s, (start, old.clone()));
                if e > end {
                    self.map.insert(end, (e, old));
                }
            }
        }
        // Remove (and split the tail of) segments starting inside.
        let inside: Vec<usize> = self.map.range(start..end).map(|(&s, _)| s).collect();
        for s in inside {
            let (e, old) = self.map.remove(&s).expect("listed");
            if e > end {
                self.map.insert(end, (e, old));
            }
        }
        if let Some(v) = v {
            self.map.insert(start, (end, v));
            self.merge_at(start);
            self.merge_at(end);
        }
    }

    /// Merges the segment ending at `at` with the one starting there, if equal.
    fn merge_at(&mut self, at: usize) {
        let Some((&ps, (pe, pv))) = self.map.range(..at).next_back() else {
            return;
        };
        if *pe != at {
            return;
        }
        let Some((ne, nv)) = self.map.get(&at) else {
            return;
        };
        if pv == nv {
            let ne = *ne;
            let pv = pv.clone();
            self.map.remove(&at);
            self.map.insert(ps, (ne, pv));
        }
    }

    fn iter(&self) -> impl Iterator<Item = (usize, usize, &V)> + '_ {
        self.map.iter().map(|(&s, (e, v))| (s, *e, v))
    }
}

/// The simulated kernel's state.
#[derive(Debug, Default)]
struct State {
    /// The mappings.
    vmas: IntervalMap<Vma>,
    /// Contents of pages ever written (page address → page), outside AWE windows and shared
    /// views; for a page of a private view, its private copy (it was written).
    pages: BTreeMap<usize, Box<[u8]>>,
    /// Pages of AWE windows: page address → physical page number.
    window: BTreeMap<usize, usize>,
    /// The AWE physical-page store (None: never written, reads as zero).
    frames: Vec<Option<Box<[u8]>>>,
    /// Ranges registered for write tracking.
    watched: IntervalMap<()>,
    /// Written pages of registered ranges.
    written: BTreeSet<usize>,
    /// Locked ranges.
    locked: IntervalMap<()>,
    /// Pages whose data MEM_RESET discarded (discard mode only).
    discarded: BTreeSet<usize>,
    /// Backing objects this process holds open, with how many times.
    opened: BTreeMap<u64, usize>,
    /// The backing object the next [`Os::backing_new`] opens instead of creating one.
    adopt: Option<u64>,
}

/// The simulated backend. Cheap to create; each [`crate::Space`] over it is an independent
/// simulated process.
#[derive(Debug)]
pub struct SimOs {
    layout: Layout,
    state: Mutex<State>,
    discard_on_reset: AtomicBool,
    /// The machine's section backing objects (lock order: `state`, then the store).
    store: Arc<SectionStore>,
}

fn serr(call: Syscall, errno: i32, kind: OsErrorKind) -> OsError {
    OsError { call, errno, kind }
}

const EBADF: i32 = 9;
const ENOMEM: i32 = 12;
const EEXIST: i32 = 17;
const EINVAL: i32 = 22;
const EOPNOTSUPP: i32 = 95;

impl SimOs {
    /// A simulated process with this layout and nothing mapped, alone on its machine.
    pub fn new(layout: Layout) -> SimOs {
        SimOs::with_store(layout, Arc::new(SectionStore::new()))
    }

    /// A simulated process with this layout on the machine whose section backing objects
    /// `store` holds (shared with the other processes on it).
    pub fn with_store(layout: Layout, store: Arc<SectionStore>) -> SimOs {
        SimOs {
            layout,
            state: Mutex::new(State::default()),
            discard_on_reset: AtomicBool::new(false),
            store,
        }
    }

    /// The machine's section backing objects.
    pub fn store(&self) -> &Arc<SectionStore> {
        &self.store
    }

    /// Makes the next [`Os::backing_new`] of this process open the existing backing object
    /// `b` (counting one more open reference) instead of creating one, and grow it to the
    /// size asked if it is smaller: how a simulated process opens a named section another
    /// one created. `None` cancels a pending adoption.
    pub fn adopt_next(&self, b: Option<BackingId>) {
        self.st().adopt = b.map(|b| b.0);
    }

    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    /// The layout this backend simulates.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// With `true`, MEM_RESET discards the data of the pages at once (as a machine under
    /// memory pressure would), and MEM_RESET_UNDO reports them lost.
    pub fn set_discard_on_reset(&self, discard: bool) {
        self.discard_on_reset.store(discard, Ordering::Relaxed);
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn page(&self) -> usize {
        self.layout.page_size
    }

    /// One past the highest simulated address.
    fn top(&self) -> usize {
        self.layout.max_address.saturating_add(1)
    }

    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    /// Maps memory that is not the engine's (an image, a file view, a stack) into the
    /// simulated process, so that VirtualQuery and the maps show it. Fails if anything is
    /// mapped there.
    pub fn map_foreign(
        &self,
        start: usize,
        len: usize,
        prot: HostProt,
        backing: Backing,
    ) -> Result<(), OsError> {
        let mut st = self.st();
        let end = start
            .checked_add(len)
            .ok_or(serr(Syscall::Map, EINVAL, OsErrorKind::Other))?;
        if st.vmas.any(start, end) {
            return Err(serr(Syscall::Map, EEXIST, OsErrorKind::AddressInUse));
        }
        st.vmas.set(
            start,
            end,
            Some(Vma {
                prot,
                backing,
                shared: backing == Backing::File,
                view: None,
            }),
        );
        Ok(())
    }

    /// Every simulated mapping: `(start, end, protection)`, ascending (adjacent mappings of
    /// equal protection are one).
    pub fn mappings(&self) -> Vec<(usize, usize, HostProt)> {
        self.st()
            .vmas
            .iter()
            .map(|(s, e, v)| (s, e, v.prot))
            .collect()
    }

    /// How many pages hold stored contents (pages never written are not stored): this
    /// process's pages (private copies of copy-on-write view pages included) and its AWE
    /// frames, plus the chunks of the machine's section backing objects.
    pub fn stored_pages(&self) -> usize {
        let st = self.st();
        st.pages.len() + st.frames.iter().filter(|f| f.is_some()).count() + self.store.stored_chunks()
    }

    /// Sets `[start, end)` to `v` (or unmaps it), keeping the count of bytes each backing
    /// object has mapped by views, and freeing objects that are neither open nor mapped.
    fn set_vma(&self, st: &mut State, start: usize, end: usize, v: Option<Vma>) {
        let old = st.vmas.overlapping(start, end);
        let views_change =
            old.iter().any(|(_, _, o)| o.view.is_some()) || v.is_some_and(|v| v.view.is_some());
        if views_change {
            let mut store = self.store.lock();
            let mut touched = Vec::new();
            for (s, e, o) in old {
                if let Some(x) = o.view {
                    if let Some(obj) = store.objs.get_mut(&x.backing) {
                        obj.mapped = obj.mapped.saturating_sub((e - s) as u64);
                    }
                    touched.push(x.backing);
                }
            }
            if let Some(x) = v.and_then(|v| v.view) {
                if let Some(obj) = store.objs.get_mut(&x.backing) {
                    obj.mapped += (end - start) as u64;
                }
            }
            for b in touched {
                store.collect(b);
            }
        }
        st.vmas.set(start, end, v);
    }

    /// Checks a view request: a page-aligned offset of an existing backing object.
    fn check_view(&self, m: &ViewMap) -> Result<(), OsError> {
        if m.offset % self.page() as u64 != 0 {
            return Err(serr(Syscall::Section, EINVAL, OsErrorKind::Other));
        }
        self.store.lock().get(m.backing.0).map(|_| ())
    }

    /// The mapping of a view described by `m` starting at `addr`.
    fn view_vma(addr: usize, m: &ViewMap) -> Vma {
        Vma {
            prot: m.prot,
            backing: Backing::File,
            shared: !m.private,
            view: Some(ViewSeg {
                backing: m.backing.0,
                delta: m.offset.wrapping_sub(addr as u64),
                private: m.private,
            }),
        }
    }

    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    /// The protection of the page at `addr`, `None` if unmapped.
    pub fn prot_at(&self, addr: usize) -> Option<HostProt> {
        self.st().vmas.get(addr).map(|(_, _, v)| v.prot)
    }

    /// Drops the contents of the pages of `[start, end)` (and their AWE window entries).
    fn drop_contents(st: &mut State, start: usize, end: usize) {
        let keys: Vec<usize> = st.pages.range(start..end).map(|(&k, _)| k).collect();
        for k in keys {
            st.pages.remove(&k);
        }
        let keys: Vec<usize> = st.window.range(start..end).map(|(&k, _)| k).collect();
        for k in keys {
            st.window.remove(&k);
        }
        let keys: Vec<usize> = st.discarded.range(start..end).copied().collect();
        for k in keys {
            st.discarded.remove(&k);
        }
    }

    /// Forgets write tracking and locks of `[start, end)` (fresh memory has neither).
    fn drop_tracking(st: &mut State, start: usize, end: usize) {
        st.watched.set(start, end, None);
        let keys: Vec<usize> = st.written.range(start..end).copied().collect();
        for k in keys {
            st.written.remove(&k);
        }
        st.locked.set(start, end, None);
    }

    /// The free gaps of `[lo, hi)`, ascending.
    fn gaps(st: &State, lo: usize, hi: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut at = lo;
        for (s, e, _) in st.vmas.overlapping(lo, hi) {
            if s > at {
                out.push((at, s));
            }
            at = at.max(e);
        }
        if at < hi {
            out.push((at, hi));
        }
        out
    }

    fn place(&self, st: &State, placement: Placement, len: usize) -> Result<usize, OsError> {
        let none = serr(Syscall::Map, ENOMEM, OsErrorKind::OutOfAddressSpace);
        match placement {
            Placement::Fixed(addr) => {
                let end = addr
                    .checked_add(len)
                    .filter(|&e| e <= self.top())
                    .ok_or(none)?;
                if st.vmas.any(addr, end) {
                    return Err(serr(Syscall::Map, EEXIST, OsErrorKind::AddressInUse));
                }
                Ok(addr)
            }
            Placement::Anywhere {
                align,
                lowest,
                highest_end,
            }
            | Placement::BottomUp {
                align,
                lowest,
                highest_end,
            } => {
                let hi = highest_end.min(self.top());
                for (s, e) in Self::gaps(st, lowest, hi) {
                    let Some(base) = s.checked_next_multiple_of(align) else {
                        break;
                    };
                    if base.checked_add(len).is_some_and(|x| x <= e) {
                        return Ok(base);
                    }
                }
                Err(none)
            }
            Placement::TopDown {
                align,
                lowest,
                highest_end,
            } => {
                let hi = highest_end.min(self.top());
                for (s, e) in Self::gaps(st, lowest, hi).into_iter().rev() {
                    let Some(cand) = e.checked_sub(len) else {
                        continue;
                    };
                    let base = cand & !(align - 1);
                    if base >= s {
                        return Ok(base);
                    }
                }
                Err(none)
            }
        }
    }

    /// Whether every view page of `[start, end)` maps bytes inside its backing object's size
    /// (as on Linux, touching a page wholly past the end of the object is a bus error).
    fn views_reachable(st: &State, store: &StoreState, start: usize, end: usize, p: usize) -> bool {
        st.vmas
            .overlapping(start & !(p - 1), end)
            .into_iter()
            .all(|(_, e, v)| match v.view {
                None => true,
                Some(x) => store
                    .get(x.backing)
                    .is_ok_and(|o| x.offset_of((e - 1) & !(p - 1)) < o.size),
            })
    }

    /// Calls `f` for each page-sized piece of `[addr, addr+len)`: (page base, offset in page,
    /// offset in the buffer, length).
    fn pieces(&self, addr: usize, len: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
        let p = self.page();
        let mut done = 0;
        while done < len {
            let at = addr + done;
            let page = at & !(p - 1);
            let off = at - page;
            let n = (p - off).min(len - done);
            f(page, off, done, n);
            done += n;
        }
    }
}

// SAFETY: maps no real memory; its answers describe its own simulated kernel.
unsafe impl Os for SimOs {
    fn page_size(&self) -> usize {
        self.layout.page_size
    }

    fn map(&self, placement: Placement, len: usize, prot: HostProt) -> Result<usize, OsError> {
        let mut st = self.st();
        let base = self.place(&st, placement, len)?;
        Self::drop_contents(&mut st, base, base + len);
        Self::drop_tracking(&mut st, base, base + len);
        self.set_vma(&mut st, base, base + len, Some(Vma::anonymous(prot)));
        Ok(base)
    }

    fn unmap(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let mut st = self.st();
        self.set_vma(&mut st, addr, addr + len, None);
        Self::drop_contents(&mut st, addr, addr + len);
        Self::drop_tracking(&mut st, addr, addr + len);
        Ok(())
    }

    fn protect(&self, addr: usize, len: usize, prot: HostProt) -> Result<(), OsError> {
        let mut st = self.st();
        if !st.vmas.covers(addr, addr + len) {
            return Err(serr(Syscall::Protect, ENOMEM, OsErrorKind::NotMapped));
        }
        for (s, e, v) in st.vmas.overlapping(addr, addr + len) {
            self.set_vma(&mut st, s, e, Some(Vma { prot, ..v }));
        }
        Ok(())
    }

    fn replace_with_reserved(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let mut st = self.st();
        Self::drop_contents(&mut st, addr, addr + len);
        Self::drop_tracking(&mut st, addr, addr + len);
        self.set_vma(&mut st, addr, addr + len, Some(Vma::anonymous(HostProt::NONE)));
        Ok(())
    }

    fn is_mapped(&self, addr: usize, len: usize) -> bool {
        self.st().vmas.covers(addr, addr + len)
    }

    fn fill_holes(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let mut st = self.st();
        for (s, e) in Self::gaps(&st, addr, addr + len) {
            st.vmas.set(s, e, Some(Vma::anonymous(HostProt::NONE)));
        }
        Ok(())
    }

    fn lazy_free(&self, addr: usize, len: usize) -> Result<(), OsError> {
        if !self.discard_on_reset.load(Ordering::Relaxed) {
            // No memory pressure in the simulated machine: the data stays.
            return Ok(());
        }
        let mut st = self.st();
        let p = self.page();
        let keys: Vec<usize> = st.pages.range(addr..addr + len).map(|(&k, _)| k).collect();
        for k in keys {
            st.pages.remove(&k);
            st.discarded.insert(k);
        }
        let _ = p;
        Ok(())
    }

    fn resident(&self, addr: usize, len: usize, out: &mut [bool]) -> Result<(), OsError> {
        let st = self.st();
        if !st.vmas.covers(addr, addr + len) {
            return Err(serr(Syscall::ResetUndo, ENOMEM, OsErrorKind::NotMapped));
        }
        let p = self.page();
        // A page is resident once it was written (a page never written is the zero page);
        // a shared view page, once its section's page was.
        let store = self.store.lock();
        for (i, o) in out.iter_mut().enumerate().take(len / p) {
            let a = addr + i * p;
            let in_section = st
                .vmas
                .get(a)
                .and_then(|(_, _, v)| v.view)
                .is_some_and(|x| {
                    store.get(x.backing).is_ok_and(|obj| {
                        obj.chunks
                            .contains_key(&(x.offset_of(a) / obj.chunk as u64))
                    })
                });
            *o = st.pages.contains_key(&a) || st.window.contains_key(&a) || in_section;
        }
        Ok(())
    }

    fn undo_lazy_free(
        &self,
        addr: usize,
        len: usize,
        _writable: bool,
    ) -> Result<UndoReport, OsError> {
        let mut st = self.st();
        let p = self.page();
        let lost: Vec<usize> = st.discarded.range(addr..addr + len).copied().collect();
        for k in &lost {
            st.discarded.remove(k);
        }
        Ok(UndoReport {
            intact: len / p - lost.len(),
            lost: lost.len(),
        })
    }

    fn lock(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let mut st = self.st();
        if !st.vmas.covers(addr, addr + len) {
            return Err(serr(Syscall::Lock, ENOMEM, OsErrorKind::NotMapped));
        }
        st.locked.set(addr, addr + len, Some(()));
        Ok(())
    }

    fn unlock(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let mut st = self.st();
        if !st.vmas.covers(addr, addr + len) {
            return Err(serr(Syscall::Unlock, ENOMEM, OsErrorKind::NotMapped));
        }
        st.locked.set(addr, addr + len, None);
        Ok(())
    }

    fn kernel_region(&self, addr: usize) -> KernelRegion {
        let st = self.st();
        if let Some((s, e, v)) = st.vmas.get(addr) {
            return KernelRegion::Mapped(ForeignMapping {
                start: s,
                end: e,
                prot: v.prot,
                shared: v.shared,
                backing: v.backing,
            });
        }
        let start = st
            .vmas
            .map
            .range(..=addr)
            .next_back()
            .map_or(0, |(_, (e, _))| *e);
        let end = st
            .vmas
            .map
            .range(addr..)
            .next()
            .map_or(self.top(), |(&s, _)| s)
            .max(addr);
        KernelRegion::Free {
            start: start & !(self.page() - 1),
            end,
        }
    }

    fn flush_instruction_cache(&self, _addr: usize, _len: usize) {}

    fn real_memory(&self) -> bool {
        false
    }

    fn simulated_faults(&self) -> bool {
        true
    }

    fn sim_read(&self, addr: usize, buf: &mut [u8]) -> bool {
        let st = self.st();
        let Some(end) = addr.checked_add(buf.len()) else {
            return false;
        };
        if !st.vmas.covers(addr, end) {
            return false;
        }
        let store = self.store.lock();
        if !Self::views_reachable(&st, &store, addr, end, self.page()) {
            return false;
        }
        self.pieces(addr, buf.len(), |page, off, at, n| {
            let view = st.vmas.get(page).and_then(|(_, _, v)| v.view);
            if let Some(x) = view {
                if !(x.private && st.pages.contains_key(&page)) {
                    // A shared page, or a copy-on-write page not written yet: the section's.
                    if let Ok(obj) = store.get(x.backing) {
                        obj.read(x.offset_of(page) + off as u64, &mut buf[at..at + n]);
                    }
                    return;
                }
            }
            let src = match st.window.get(&page) {
                Some(&f) => st.frames.get(f).and_then(|x| x.as_deref()),
                None => st.pages.get(&page).map(|b| &b[..]),
            };
            match src {
                Some(b) => buf[at..at + n].copy_from_slice(&b[off..off + n]),
                None => buf[at..at + n].fill(0),
            }
        });
        true
    }

    fn sim_write(&self, addr: usize, bytes: &[u8]) -> bool {
        let mut st = self.st();
        let Some(end) = addr.checked_add(bytes.len()) else {
            return false;
        };
        if !st.vmas.covers(addr, end) {
            return false;
        }
        let p = self.page();
        let mut store = self.store.lock();
        if !Self::views_reachable(&st, &store, addr, end, p) {
            return false;
        }
        let st = &mut *st;
        self.pieces(addr, bytes.len(), |page, off, at, n| {
            let view = st.vmas.get(page).and_then(|(_, _, v)| v.view);
            let dst: &mut [u8] = match (view, st.window.get(&page)) {
                (Some(x), _) if !x.private => {
                    if let Ok(obj) = store.get_mut(x.backing) {
                        obj.write(x.offset_of(page) + off as u64, &bytes[at..at + n]);
                    }
                    return;
                }
                (Some(x), _) => st.pages.entry(page).or_insert_with(|| {
                    // The first write to a copy-on-write page: this process's own copy.
                    let mut copy = vec![0; p].into_boxed_slice();
                    if let Ok(obj) = store.get(x.backing) {
                        obj.read(x.offset_of(page), &mut copy);
                    }
                    copy
                }),
                (None, Some(&f)) => {
                    if st.frames.len() <= f {
                        st.frames.resize(f + 1, None);
                    }
                    st.frames[f].get_or_insert_with(|| vec![0; p].into_boxed_slice())
                }
                (None, None) => st
                    .pages
                    .entry(page)
                    .or_insert_with(|| vec![0; p].into_boxed_slice()),
            };
            dst[off..off + n].copy_from_slice(&bytes[at..at + n]);
            if st.watched.get(page).is_some() {
                st.written.insert(page);
            }
        });
        true
    }

    fn watch_supported(&self) -> bool {
        true
    }

    fn watch_register(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let mut st = self.st();
        st.watched.set(addr, addr + len, Some(()));
        let keys: Vec<usize> = st.written.range(addr..addr + len).copied().collect();
        for k in keys {
            st.written.remove(&k);
        }
        Ok(())
    }

    fn watch_adopt(&self, addr: usize, len: usize) -> Result<(), OsError> {
        // Taking over a lost registration: every page reads as written until cleaned.
        let mut st = self.st();
        st.watched.set(addr, addr + len, Some(()));
        let p = self.page();
        for i in 0..len / p {
            st.written.insert(addr + i * p);
        }
        Ok(())
    }

    fn watch_scan(
        &self,
        addr: usize,
        len: usize,
        reset: bool,
        max: usize,
        out: &mut Vec<usize>,
    ) -> Result<(), OsError> {
        let mut st = self.st();
        if !st.watched.covers(addr, addr + len) {
            return Err(serr(Syscall::Watch, EINVAL, OsErrorKind::Other));
        }
        let found: Vec<usize> = st
            .written
            .range(addr..addr + len)
            .take(max)
            .copied()
            .collect();
        if reset {
            for k in &found {
                st.written.remove(k);
            }
        }
        out.extend(found);
        Ok(())
    }

    fn watch_clean(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let mut st = self.st();
        if !st.watched.covers(addr, addr + len) {
            return Err(serr(Syscall::Watch, EINVAL, OsErrorKind::Other));
        }
        let keys: Vec<usize> = st.written.range(addr..addr + len).copied().collect();
        for k in keys {
            st.written.remove(&k);
        }
        Ok(())
    }

    fn map_large(
        &self,
        placement: Placement,
        len: usize,
        prot: HostProt,
        page: usize,
    ) -> Result<usize, OsError> {
        if page == 0 || len % page != 0 {
            return Err(serr(Syscall::MapLarge, EINVAL, OsErrorKind::Other));
        }
        if let Placement::Fixed(a) = placement {
            if a % page != 0 {
                return Err(serr(Syscall::MapLarge, EINVAL, OsErrorKind::Other));
            }
        }
        // The simulated machine always has large pages to spare.
        self.map(placement, len, prot)
    }

    fn phys_reserve(&self, pages: usize) -> Result<(), OsError> {
        let mut st = self.st();
        if st.frames.len() < pages {
            st.frames.resize(pages, None);
        }
        Ok(())
    }

    fn phys_map(
        &self,
        addr: usize,
        first: usize,
        count: usize,
        prot: HostProt,
    ) -> Result<(), OsError> {
        let mut st = self.st();
        if first + count > st.frames.len() {
            return Err(serr(Syscall::Physical, EINVAL, OsErrorKind::Other));
        }
        let p = self.page();
        let end = addr + count * p;
        Self::drop_contents(&mut st, addr, end);
        self.set_vma(&mut st, addr, end, Some(Vma::anonymous(prot)));
        for i in 0..count {
            st.window.insert(addr + i * p, first + i);
        }
        Ok(())
    }

    fn phys_discard(&self, first: usize, count: usize) -> Result<(), OsError> {
        let mut st = self.st();
        for f in first..(first + count).min(st.frames.len()) {
            st.frames[f] = None;
        }
        Ok(())
    }

    // ---- Sections: see the module documentation. ----

    fn backing_new(
        &self,
        size: u64,
        _large_page: Option<usize>,
        _charge: bool,
    ) -> Result<BackingId, OsError> {
        // The simulated machine has no commit limit and large pages to spare.
        let mut st = self.st();
        let mut store = self.store.lock();
        let id = match st.adopt.take() {
            Some(id) => {
                let obj = store.get_mut(id)?;
                obj.open += 1;
                if obj.size < size {
                    obj.resize(size);
                }
                id
            }
            None => {
                store.last += 1;
                let id = store.last;
                store.objs.insert(
                    id,
                    BackingObj {
                        size,
                        chunk: self.page(),
                        chunks: BTreeMap::new(),
                        allocated: IntervalMap::default(),
                        open: 1,
                        mapped: 0,
                    },
                );
                id
            }
        };
        *st.opened.entry(id).or_insert(0) += 1;
        Ok(BackingId(id))
    }

    /// Not supported: the simulated machine has no files (file-backed sections fail with
    /// ERROR_NOT_SUPPORTED).
    fn backing_adopt_fd(&self, _fd: i32) -> Result<BackingId, OsError> {
        Err(serr(Syscall::Section, EOPNOTSUPP, OsErrorKind::Unsupported))
    }

    fn backing_close(&self, b: BackingId) {
        let mut st = self.st();
        let Some(n) = st.opened.get_mut(&b.0) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            st.opened.remove(&b.0);
        }
        let mut store = self.store.lock();
        if let Some(obj) = store.objs.get_mut(&b.0) {
            obj.open = obj.open.saturating_sub(1);
        }
        store.collect(b.0);
    }

    fn backing_size(&self, b: BackingId) -> Result<u64, OsError> {
        self.store.lock().get(b.0).map(|o| o.size)
    }

    fn backing_set_size(&self, b: BackingId, size: u64) -> Result<(), OsError> {
        self.store.lock().get_mut(b.0)?.resize(size);
        Ok(())
    }

    fn backing_allocate(&self, b: BackingId, offset: u64, len: u64) -> Result<(), OsError> {
        let mut store = self.store.lock();
        let obj = store.get_mut(b.0)?;
        let end = offset
            .checked_add(len)
            .filter(|&e| usize::try_from(e).is_ok())
            .ok_or(serr(Syscall::Section, EINVAL, OsErrorKind::Other))?;
        obj.allocated.set(offset as usize, end as usize, Some(()));
        if end > obj.size {
            // fallocate without FALLOC_FL_KEEP_SIZE grows the object.
            obj.size = end;
        }
        Ok(())
    }

    fn backing_allocated(&self, b: BackingId, offset: u64) -> Result<(bool, u64), OsError> {
        let store = self.store.lock();
        let obj = store.get(b.0)?;
        let Ok(at) = usize::try_from(offset) else {
            return Ok((false, u64::MAX));
        };
        if let Some((_, e, _)) = obj.allocated.get(at) {
            return Ok((true, e as u64));
        }
        let next = obj.allocated.map.range(at..).next().map(|(&s, _)| s as u64);
        Ok((false, next.unwrap_or(u64::MAX)))
    }

    fn map_view(&self, placement: Placement, len: usize, m: ViewMap) -> Result<usize, OsError> {
        self.check_view(&m)?;
        let mut st = self.st();
        let base = self.place(&st, placement, len)?;
        Self::drop_contents(&mut st, base, base + len);
        Self::drop_tracking(&mut st, base, base + len);
        self.set_vma(&mut st, base, base + len, Some(Self::view_vma(base, &m)));
        Ok(base)
    }

    fn remap_view(&self, addr: usize, len: usize, m: ViewMap) -> Result<(), OsError> {
        self.check_view(&m)?;
        let end = addr
            .checked_add(len)
            .filter(|&e| e <= self.top())
            .ok_or(serr(Syscall::Section, ENOMEM, OsErrorKind::OutOfAddressSpace))?;
        let mut st = self.st();
        // MAP_FIXED: what was there is gone, private copies included.
        Self::drop_contents(&mut st, addr, end);
        Self::drop_tracking(&mut st, addr, end);
        self.set_vma(&mut st, addr, end, Some(Self::view_vma(addr, &m)));
        Ok(())
    }

    /// A page is a copy when it belongs to a private view and was written; every other page
    /// (shared views, anonymous memory, unmapped pages) reports false.
    fn copied(&self, addr: usize, len: usize, out: &mut [bool]) -> Result<(), OsError> {
        let st = self.st();
        let p = self.page();
        for (i, o) in out.iter_mut().enumerate().take(len / p) {
            let a = addr + i * p;
            *o = st
                .vmas
                .get(a)
                .and_then(|(_, _, v)| v.view)
                .is_some_and(|x| x.private && st.pages.contains_key(&a));
        }
        Ok(())
    }

    /// Nothing to write back (the machine has no files); fails only on unmapped memory, as
    /// `msync` does.
    fn flush_view(&self, addr: usize, len: usize) -> Result<(), OsError> {
        if self.st().vmas.covers(addr, addr.saturating_add(len)) {
            Ok(())
        } else {
            Err(serr(Syscall::Section, ENOMEM, OsErrorKind::NotMapped))
        }
    }
}

impl Drop for SimOs {
    /// The simulated process ends: its views are unmapped and the backing objects it held
    /// open are closed, so the machine frees what nobody else uses.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        let mut store = self.store.lock();
        let mut touched = Vec::new();
        for (s, e, v) in st.vmas.iter() {
            if let Some(x) = v.view {
                if let Some(obj) = store.objs.get_mut(&x.backing) {
                    obj.mapped = obj.mapped.saturating_sub((e - s) as u64);
                }
                touched.push(x.backing);
            }
        }
        for (&b, &n) in &st.opened {
            if let Some(obj) = store.objs.get_mut(&b) {
                obj.open = obj.open.saturating_sub(n);
            }
            touched.push(b);
        }
        for b in touched {
            store.collect(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_map_splits_and_merges() {
        let mut m: IntervalMap<u8> = IntervalMap::default();
        m.set(0, 100, Some(1));
        m.set(20, 30, Some(2));
        assert_eq!(m.iter().count(), 3);
        m.set(20, 30, Some(1));
        assert_eq!(m.iter().count(), 1);
        m.set(40, 60, None);
        assert_eq!(
            m.iter().map(|(s, e, v)| (s, e, *v)).collect::<Vec<_>>(),
            vec![(0, 40, 1), (60, 100, 1)]
        );
        assert!(m.covers(0, 40));
        assert!(!m.covers(0, 41));
        assert!(m.any(39, 61));
        assert!(!m.any(40, 60));
    }

    #[test]
    fn placement_is_deterministic() {
        let os = SimOs::new(Layout::WIN32);
        let any = Placement::Anywhere {
            align: 0x10000,
            lowest: 0x10000,
            highest_end: Layout::WIN32.allocatable_end(),
        };
        let top = Placement::TopDown {
            align: 0x10000,
            lowest: 0x10000,
            highest_end: Layout::WIN32.allocatable_end(),
        };
        assert_eq!(os.map(any, 0x3000, HostProt::NONE).unwrap(), 0x10000);
        assert_eq!(os.map(any, 0x3000, HostProt::NONE).unwrap(), 0x20000);
        assert_eq!(os.map(top, 0x3000, HostProt::NONE).unwrap(), 0x7FFD_0000);
        assert_eq!(
            os.map(Placement::Fixed(0x20000), 0x1000, HostProt::NONE)
                .unwrap_err()
                .kind,
            OsErrorKind::AddressInUse
        );
    }

    #[test]
    fn contents_are_sparse_and_dropped() {
        let os = SimOs::new(Layout::WIN32);
        os.map(Placement::Fixed(0x40000), 0x4000, HostProt::READ_WRITE)
            .unwrap();
        let mut b = [9u8; 8];
        assert!(os.sim_read(0x40ffc, &mut b));
        assert_eq!(b, [0; 8]);
        assert!(os.sim_write(0x40ffc, &[1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(os.stored_pages(), 2);
        assert!(os.sim_read(0x40ffc, &mut b));
        assert_eq!(b, [1, 2, 3, 4, 5, 6, 7, 8]);
        os.replace_with_reserved(0x40000, 0x1000).unwrap();
        assert_eq!(os.stored_pages(), 1);
        os.unmap(0x40000, 0x4000).unwrap();
        assert_eq!(os.stored_pages(), 0);
        assert!(!os.sim_read(0x40000, &mut b));
    }

    fn any(l: &Layout) -> Placement {
        Placement::Anywhere {
            align: l.granularity,
            lowest: l.min_address,
            highest_end: l.allocatable_end(),
        }
    }

    fn vm(b: BackingId, offset: u64, prot: HostProt, private: bool) -> ViewMap {
        ViewMap {
            backing: b,
            offset,
            prot,
            private,
        }
    }

    #[test]
    fn views_share_a_backing_and_copies_stay_private() {
        let l = Layout::WIN32;
        let os = SimOs::new(l);
        let b = os.backing_new(0x4000, None, true).unwrap();
        assert_eq!(os.backing_size(b).unwrap(), 0x4000);
        let rw = HostProt::READ_WRITE;
        let a = os.map_view(any(&l), 0x4000, vm(b, 0, rw, false)).unwrap();
        let c = os.map_view(any(&l), 0x3000, vm(b, 0x1000, rw, true)).unwrap();
        assert_ne!(a, c);
        assert!(os.sim_write(a + 0x1ffe, b"wxyz"));
        let mut buf = [0u8; 4];
        assert!(os.sim_read(c + 0xffe, &mut buf));
        assert_eq!(&buf, b"wxyz", "the copy-on-write view reads the section");
        let mut copied = [true; 3];
        os.copied(c, 0x3000, &mut copied).unwrap();
        assert_eq!(copied, [false; 3]);
        assert!(os.sim_write(c + 0x1000, b"C"));
        os.copied(c, 0x3000, &mut copied).unwrap();
        assert_eq!(copied, [false, true, false]);
        assert!(os.sim_read(a + 0x2000, &mut buf[..1]));
        assert_eq!(&buf[..1], b"y", "a copy never reaches the section");
        assert!(os.sim_read(c + 0x1000, &mut buf));
        assert_eq!(&buf, b"Cz\0\0", "the copy started from the section's page");
        // A remap is MAP_FIXED: the copy is gone, the section shows again.
        os.remap_view(c + 0x1000, 0x1000, vm(b, 0x2000, rw, false))
            .unwrap();
        assert!(os.sim_read(c + 0x1000, &mut buf[..1]));
        assert_eq!(&buf[..1], b"y");
        // Shared again: writes reach the section.
        assert!(os.sim_write(c + 0x1001, b"Q"));
        assert!(os.sim_read(a + 0x2001, &mut buf[..1]));
        assert_eq!(&buf[..1], b"Q");
        // The kernel's view of them: file mappings, private or shared.
        for (at, shared) in [(c, false), (c + 0x1000, true)] {
            match os.kernel_region(at) {
                KernelRegion::Mapped(m) => {
                    assert_eq!((m.backing, m.shared, m.start), (Backing::File, shared, at))
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_backing_lives_while_open_or_mapped() {
        let l = Layout::WIN32;
        let os = SimOs::new(l);
        let b = os.backing_new(0x2000, None, true).unwrap();
        let v = os
            .map_view(any(&l), 0x2000, vm(b, 0, HostProt::READ_WRITE, false))
            .unwrap();
        assert!(os.sim_write(v, b"x"));
        os.backing_close(b);
        assert_eq!(os.store().objects(), 1, "the view keeps it");
        let mut x = [0u8];
        assert!(os.sim_read(v, &mut x));
        assert_eq!(&x, b"x");
        // Protection changes and partial unmaps keep the count right.
        os.protect(v, 0x1000, HostProt::READ).unwrap();
        os.unmap(v, 0x1000).unwrap();
        assert_eq!(os.store().objects(), 1);
        os.replace_with_reserved(v + 0x1000, 0x1000).unwrap();
        assert_eq!(os.store().objects(), 0, "nothing maps it any more");
        assert_eq!(os.stored_pages(), 0);
        assert!(os.backing_size(b).is_err());
        assert!(os
            .map_view(any(&l), 0x1000, vm(b, 0, HostProt::READ, false))
            .is_err());
    }

    #[test]
    fn allocated_runs_and_sizes() {
        let os = SimOs::new(Layout::WIN32);
        let b = os.backing_new(0x10000, None, false).unwrap();
        assert_eq!(os.backing_allocated(b, 0).unwrap(), (false, u64::MAX));
        os.backing_allocate(b, 0x3000, 0x2000).unwrap();
        assert_eq!(os.backing_allocated(b, 0).unwrap(), (false, 0x3000));
        assert_eq!(os.backing_allocated(b, 0x3000).unwrap(), (true, 0x5000));
        assert_eq!(os.backing_allocated(b, 0x4fff).unwrap(), (true, 0x5000));
        assert_eq!(os.backing_allocated(b, 0x5000).unwrap(), (false, u64::MAX));
        os.backing_allocate(b, 0x5000, 0x1000).unwrap();
        assert_eq!(os.backing_allocated(b, 0x3000).unwrap(), (true, 0x6000));
        // fallocate past the end grows the object; shrinking drops what lies past it.
        os.backing_allocate(b, 0xf000, 0x2000).unwrap();
        assert_eq!(os.backing_size(b).unwrap(), 0x11000);
        os.backing_set_size(b, 0x4000).unwrap();
        assert_eq!(os.backing_allocated(b, 0x3000).unwrap(), (true, 0x4000));
        assert_eq!(os.backing_allocated(b, 0x4000).unwrap(), (false, u64::MAX));
        // A view page wholly past the end of the object is a bus error, not data.
        let v = os
            .map_view(
                any(&Layout::WIN32),
                0x8000,
                vm(b, 0, HostProt::READ_WRITE, false),
            )
            .unwrap();
        let mut x = [0u8];
        assert!(os.sim_read(v + 0x3fff, &mut x));
        assert!(!os.sim_read(v + 0x4000, &mut x));
        assert!(!os.sim_write(v + 0x3fff, &[1, 2]));
        assert!(os.backing_adopt_fd(3).is_err_and(|e| e.kind == OsErrorKind::Unsupported));
    }

    #[test]
    fn processes_on_one_store_share_backings() {
        let store = Arc::new(SectionStore::new());
        let l = Layout::WIN32;
        let a = SimOs::with_store(l, store.clone());
        let big = Layout {
            page_size: 0x2000,
            granularity: 0x20000,
            ..l
        };
        let b = SimOs::with_store(big, store.clone());
        let ba = a.backing_new(0x3000, None, true).unwrap();
        b.adopt_next(Some(ba));
        let bb = b.backing_new(0x4000, None, true).unwrap();
        assert_eq!(ba, bb, "adopted, not created");
        assert_eq!(b.backing_size(bb).unwrap(), 0x4000, "grown to the size asked");
        let rw = HostProt::READ_WRITE;
        let va = a.map_view(any(&l), 0x3000, vm(ba, 0, rw, false)).unwrap();
        let vb = b.map_view(any(&big), 0x4000, vm(bb, 0, rw, false)).unwrap();
        assert!(a.sim_write(va + 0x2fff, b"!"));
        let mut x = [0u8];
        assert!(b.sim_read(vb + 0x2fff, &mut x));
        assert_eq!(&x, b"!");
        // The next section of b is a new one again.
        let other = b.backing_new(0x2000, None, true).unwrap();
        assert_ne!(other, ba);
        a.backing_close(ba);
        drop(a);
        assert_eq!(store.objects(), 2, "b holds both");
        drop(b);
        assert_eq!(store.objects(), 0, "a process's end closes and unmaps what it held");
    }
}
