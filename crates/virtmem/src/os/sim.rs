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

use super::{
    Backing, ForeignMapping, HostProt, KernelRegion, Os, OsError, OsErrorKind, Placement, Syscall,
    UndoReport,
};
use crate::vocab::layout::Layout;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

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
    /// Contents of pages ever written (page address → page), outside AWE windows.
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
}

/// The simulated backend. Cheap to create; each [`crate::Space`] over it is an independent
/// simulated process.
#[derive(Debug)]
pub struct SimOs {
    layout: Layout,
    state: Mutex<State>,
    discard_on_reset: AtomicBool,
}

fn serr(call: Syscall, errno: i32, kind: OsErrorKind) -> OsError {
    OsError { call, errno, kind }
}

const ENOMEM: i32 = 12;
const EEXIST: i32 = 17;
const EINVAL: i32 = 22;

impl SimOs {
    /// A simulated process with this layout and nothing mapped.
    pub fn new(layout: Layout) -> SimOs {
        SimOs {
            layout,
            state: Mutex::new(State::default()),
            discard_on_reset: AtomicBool::new(false),
        }
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

    /// How many pages hold stored contents (pages never written are not stored).
    pub fn stored_pages(&self) -> usize {
        let st = self.st();
        st.pages.len() + st.frames.iter().filter(|f| f.is_some()).count()
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
        st.vmas.set(
            base,
            base + len,
            Some(Vma {
                prot,
                backing: Backing::Anonymous,
                shared: false,
            }),
        );
        Ok(base)
    }

    fn unmap(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let mut st = self.st();
        st.vmas.set(addr, addr + len, None);
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
            st.vmas.set(s, e, Some(Vma { prot, ..v }));
        }
        Ok(())
    }

    fn replace_with_reserved(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let mut st = self.st();
        Self::drop_contents(&mut st, addr, addr + len);
        Self::drop_tracking(&mut st, addr, addr + len);
        st.vmas.set(
            addr,
            addr + len,
            Some(Vma {
                prot: HostProt::NONE,
                backing: Backing::Anonymous,
                shared: false,
            }),
        );
        Ok(())
    }

    fn is_mapped(&self, addr: usize, len: usize) -> bool {
        self.st().vmas.covers(addr, addr + len)
    }

    fn fill_holes(&self, addr: usize, len: usize) -> Result<(), OsError> {
        let mut st = self.st();
        for (s, e) in Self::gaps(&st, addr, addr + len) {
            st.vmas.set(
                s,
                e,
                Some(Vma {
                    prot: HostProt::NONE,
                    backing: Backing::Anonymous,
                    shared: false,
                }),
            );
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
        // A page is resident once it was written (a page never written is the zero page).
        for (i, o) in out.iter_mut().enumerate().take(len / p) {
            let a = addr + i * p;
            *o = st.pages.contains_key(&a) || st.window.contains_key(&a);
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
        self.pieces(addr, buf.len(), |page, off, at, n| {
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
        let st = &mut *st;
        self.pieces(addr, bytes.len(), |page, off, at, n| {
            let dst: &mut [u8] = match st.window.get(&page) {
                Some(&f) => {
                    if st.frames.len() <= f {
                        st.frames.resize(f + 1, None);
                    }
                    st.frames[f].get_or_insert_with(|| vec![0; p].into_boxed_slice())
                }
                None => st
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
        st.vmas.set(
            addr,
            end,
            Some(Vma {
                prot,
                backing: Backing::Anonymous,
                shared: false,
            }),
        );
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
}
