//! AWE (Address Windowing Extensions): physical pages mapped into MEM_PHYSICAL windows
//! (`semantics.md` §9).
//!
//! Physical pages live in the backend's store (a memfd on Linux); a page's frame number is its
//! index in the store plus one (0 is never a frame). A page is mapped at one window address at
//! a time and keeps its contents when it moves. A window's pages read, in VirtualQuery, as
//! committed PAGE_READWRITE where a physical page is mapped and committed PAGE_NOACCESS where
//! none is (Windows reports each AWE page's protection from its page table entry).
//!
//! Lock order: window operation locks (ascending), then the AWE table.
//!
//! Error codes that Microsoft does not document are ours (README): an unaligned address, a
//! range outside one MEM_PHYSICAL window, a count of 0, a frame not allocated by this process,
//! a frame given twice or already mapped at another address → ERROR_INVALID_PARAMETER.

use super::{AllocKind, Allocation, Space};
use crate::error::{Error, Result};
use crate::os::{Backing, HostProt, KernelRegion, Os, OsError};
use crate::rules::runs::PageState;
use crate::vocab::consts::{PAGE_NOACCESS, PAGE_READONLY, PAGE_READWRITE};
use std::collections::{BTreeSet, HashMap};
use crate::os::linux::metaheap::MetaArc as Arc;

/// The process's physical pages and where they are mapped.
#[derive(Default)]
pub(crate) struct Awe {
    /// Store indices handed out and not freed.
    owned: BTreeSet<usize>,
    /// Store indices freed, to hand out again (their memory was discarded: they read zero).
    free: Vec<usize>,
    /// Store indices freed whose memory could not be discarded (a failed `phys_discard`):
    /// they may hold old data, so they never go to `free` until a discard works.
    dirty: Vec<usize>,
    /// The next never-used store index.
    next: usize,
    /// Store index → window address it is mapped at.
    mapped: HashMap<usize, usize>,
    /// Window address → store index mapped there.
    at: HashMap<usize, usize>,
    /// Window base → the protection its mapped pages have (VirtualProtect may make it
    /// PAGE_NOACCESS or PAGE_READONLY; PAGE_READWRITE when absent).
    protect: HashMap<usize, u32>,
}

impl Awe {
    /// Every mapped physical page as `(window address, store page, kernel protection)`;
    /// `window_of` gives the base of the window holding an address. No allocation (for the
    /// fork machinery, in the child).
    pub(super) fn mapped_pages<'a>(
        &'a self,
        window_of: impl Fn(usize) -> Option<usize> + Clone + 'a,
    ) -> impl Iterator<Item = (usize, usize, HostProt)> + Clone + 'a {
        self.at.iter().map(move |(&addr, &idx)| {
            let wp = window_of(addr)
                .and_then(|b| self.protect.get(&b).copied())
                .unwrap_or(PAGE_READWRITE);
            (addr, idx, awe_host(wp))
        })
    }
}

/// The kernel protection of a mapped AWE page under window protection `p`.
fn awe_host(p: u32) -> HostProt {
    crate::rules::protection::host_prot(p)
}

/// Records that window page `addr` holds store page `idx` (or none).
fn record(awe: &mut Awe, addr: usize, idx: Option<usize>) {
    if let Some(old) = awe.at.remove(&addr) {
        awe.mapped.remove(&old);
    }
    if let Some(idx) = idx {
        awe.mapped.insert(idx, addr);
        awe.at.insert(addr, idx);
    }
}

/// The protection of the window (among `windows`) holding `addr`.
fn window_protect(windows: &[Arc<Allocation>], awe: &Awe, addr: usize) -> u32 {
    windows
        .iter()
        .find(|w| addr >= w.base && addr < w.end())
        .map_or(PAGE_READWRITE, |w| {
            *awe.protect.get(&w.base).unwrap_or(&PAGE_READWRITE)
        })
}

fn bad(why: &'static str) -> Error {
    Error::InvalidParameter(why)
}

impl<O: Os> Space<O> {
    pub(crate) fn awe(&self) -> std::sync::MutexGuard<'_, Awe> {
        self.awe.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// AllocateUserPhysicalPages: `n` physical pages (zero-filled); their frame numbers.
    pub fn allocate_physical_pages(&self, n: usize) -> Result<Vec<usize>> {
        if n == 0 {
            return Err(bad("NumberOfPages is 0"));
        }
        let mut awe = self.awe();
        // Frames whose discard failed earlier: discard them now, or keep them out.
        let mut still_dirty = Vec::new();
        for i in std::mem::take(&mut awe.dirty) {
            match self.os.phys_discard(i, 1) {
                Ok(()) => awe.free.push(i),
                Err(_) => still_dirty.push(i),
            }
        }
        awe.dirty = still_dirty;
        let reuse = n.min(awe.free.len());
        let fresh = n - reuse;
        let top = awe
            .next
            .checked_add(fresh)
            .ok_or(Error::NotEnoughMemory("too many physical pages"))?;
        self.os.phys_reserve(top).map_err(Error::from_os)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..reuse {
            let i = awe.free.pop().expect("counted");
            out.push(i);
        }
        out.extend(awe.next..top);
        awe.next = top;
        for &i in &out {
            awe.owned.insert(i);
        }
        Ok(out.into_iter().map(|i| i + 1).collect())
    }

    /// The window holding `[addr, addr+len)`, or 87.
    fn window(&self, addr: usize, len: usize) -> Result<Arc<Allocation>> {
        if addr % self.page() != 0 {
            return Err(bad("the address is not page aligned"));
        }
        let a = self.find(addr).ok_or(bad("not an AWE window"))?;
        if a.kind != AllocKind::Physical || addr.checked_add(len).is_none_or(|e| e > a.end()) {
            return Err(bad("not inside one AWE window"));
        }
        Ok(a)
    }

    /// MapUserPhysicalPages: maps frames `pfns` at `addr..` (or unmaps `n` pages with `None`).
    pub fn map_physical_pages(&self, addr: usize, n: usize, pfns: Option<&[usize]>) -> Result<()> {
        if n == 0 {
            return Err(bad("NumberOfPages is 0"));
        }
        let p = self.page();
        let len = n.checked_mul(p).ok_or(bad("too many pages"))?;
        let w = self.window(addr, len)?;
        let addrs: Vec<usize> = (0..n).map(|i| addr + i * p).collect();
        self.map_scattered(&[w], &addrs, pfns)
    }

    /// MapUserPhysicalPagesScatter: maps `pfns[i]` at `addrs[i]` (a frame of 0, or `None`
    /// for all, unmaps).
    pub fn map_physical_pages_scatter(
        &self,
        addrs: &[usize],
        pfns: Option<&[usize]>,
    ) -> Result<()> {
        if addrs.is_empty() {
            return Err(bad("NumberOfPages is 0"));
        }
        let mut windows: Vec<Arc<Allocation>> = Vec::new();
        for &a in addrs {
            let w = self.window(a, self.page())?;
            if !windows.iter().any(|x| Arc::ptr_eq(x, &w)) {
                windows.push(w);
            }
        }
        windows.sort_by_key(|w| w.base);
        self.map_scattered(&windows, addrs, pfns)
    }

    fn map_scattered(
        &self,
        windows: &[Arc<Allocation>],
        addrs: &[usize],
        pfns: Option<&[usize]>,
    ) -> Result<()> {
        let guards: Option<Vec<_>> = windows.iter().map(|w| w.begin()).collect();
        let Some(_guards) = guards else {
            return Err(bad("the AWE window was released"));
        };
        let mut awe = self.awe();
        // Validate everything first: a failing call changes nothing.
        let want: Vec<Option<usize>> = match pfns {
            None => vec![None; addrs.len()],
            Some(f) => {
                if f.len() < addrs.len() {
                    return Err(bad("page array too short"));
                }
                f[..addrs.len()]
                    .iter()
                    .map(|&pfn| (pfn != 0).then(|| pfn - 1))
                    .collect()
            }
        };
        let mut seen = BTreeSet::new();
        for (i, w) in want.iter().enumerate() {
            if let Some(idx) = *w {
                if !awe.owned.contains(&idx) {
                    return Err(bad("a frame number was not allocated by this process"));
                }
                if !seen.insert(idx) {
                    return Err(bad("a frame number is given twice"));
                }
                if let Some(&at) = awe.mapped.get(&idx) {
                    if at != addrs[i] {
                        return Err(bad("a frame is already mapped at another address"));
                    }
                }
            }
        }
        // Apply, remembering how to undo. `set_page` keeps the table equal to what the
        // kernel has after every step, whatever fails.
        let mut done: Vec<(usize, Option<usize>, Option<usize>)> = Vec::new();
        let mut failure = None;
        for (i, &addr) in addrs.iter().enumerate() {
            let before = awe.at.get(&addr).copied();
            if before == want[i] {
                continue;
            }
            let host = awe_host(window_protect(windows, &awe, addr));
            if let Err(e) = self.set_page(&mut awe, addr, before, want[i], host) {
                failure = Some(Error::from_os(e));
                break;
            }
            done.push((addr, before, want[i]));
        }
        if let Some(e) = failure {
            // All or nothing: put back every page this call changed. A page that cannot be
            // put back is left as the kernel has it, and the table says so.
            for (addr, before, now) in done.into_iter().rev() {
                let host = awe_host(window_protect(windows, &awe, addr));
                let _ = self.set_page(&mut awe, addr, now, before, host);
            }
            for w in windows {
                self.publish_window(w, &awe);
            }
            return Err(e);
        }
        for w in windows {
            self.publish_window(w, &awe);
        }
        Ok(())
    }

    /// Moves the window page at `addr` (its window locked) from `from` (the store page mapped
    /// there, or none: fresh `PROT_NONE` memory) to `to`, with `MAP_FIXED`. On success the
    /// table records `to`. On failure the table records what the kernel has:
    ///
    /// * the kernel kept the old page: `from`, nothing changed;
    /// * the old kernels' `MAP_FIXED`, which unmaps before it fails, left a hole: the old
    ///   page is gone (a frame's data stays in the store), and so is anything of ours there.
    ///   The hole is filled — never over a mapping another thread made there meanwhile
    ///   (`MAP_FIXED_NOREPLACE`) — and `from` is put back into it where the kernel allows;
    ///   otherwise the page stays without a frame (`PROT_NONE`) and its old frame, still
    ///   owned, is recorded as not mapped. A window never keeps a hole the kernel would let
    ///   us fill.
    fn set_page(
        &self,
        awe: &mut Awe,
        addr: usize,
        from: Option<usize>,
        to: Option<usize>,
        host: HostProt,
    ) -> std::result::Result<(), OsError> {
        let p = self.page();
        let r = match to {
            Some(idx) => self.os.phys_map(addr, idx, 1, host),
            None => self.os.replace_with_reserved(addr, p),
        };
        match r {
            Ok(()) => {
                record(awe, addr, to);
                Ok(())
            }
            // The kernel kept the old page: nothing changed.
            Err(e) if self.os.is_mapped(addr, p) && self.still_ours(addr, from, host) => Err(e),
            Err(e) => {
                record(awe, addr, None);
                self.refill_window_page(awe, addr, from, host);
                Err(e)
            }
        }
    }

    /// After a failed `MAP_FIXED` at window page `addr` that left it mapped: whether what is
    /// mapped there is the page we had (`from`: a shared mapping of the store with the
    /// window's protection, or private anonymous `PROT_NONE` memory) rather than a mapping
    /// another thread made in a hole the call left (not ours: left alone). A foreign mapping
    /// of exactly the same kind cannot be told from ours and is taken as ours.
    fn still_ours(&self, addr: usize, from: Option<usize>, host: HostProt) -> bool {
        match self.os.kernel_region(addr) {
            KernelRegion::Mapped(m) => match from {
                Some(_) => m.shared && m.backing != Backing::Anonymous && m.prot == host,
                None => !m.shared && m.backing == Backing::Anonymous && !m.prot.any(),
            },
            KernelRegion::Free { .. } => false,
        }
    }

    /// Fills the hole at window page `addr` with fresh `PROT_NONE` memory, only if nothing
    /// is mapped there (`MAP_FIXED_NOREPLACE`: a mapping another thread made in the hole is
    /// not ours and is left alone), then maps `frame` over that page of ours when given. The
    /// table records what the page ends up holding.
    fn refill_window_page(&self, awe: &mut Awe, addr: usize, frame: Option<usize>, host: HostProt) {
        let p = self.page();
        match self
            .os
            .map(crate::os::Placement::Fixed(addr), p, HostProt::NONE)
        {
            Ok(_) => {}
            // Someone else's mapping: not ours to touch; the page holds no frame of ours.
            Err(e) if e.kind == crate::os::OsErrorKind::AddressInUse => return,
            Err(_) => {
                // Best effort (the kernel refused the mapping): fill what is still free.
                self.refill_hole(addr, p);
                return;
            }
        }
        let Some(idx) = frame else { return };
        match self.os.phys_map(addr, idx, 1, host) {
            Ok(()) => record(awe, addr, Some(idx)),
            // Our PROT_NONE page is still there: the page holds no frame.
            Err(_) if self.os.is_mapped(addr, p) => {}
            // A hole again: fill it (never over a foreign mapping); no frame.
            Err(_) => self.refill_hole(addr, p),
        }
    }

    /// Rebuilds a window's page runs from the AWE table (mapped: the window's protection).
    fn publish_window(&self, w: &Allocation, awe: &Awe) {
        let p = self.page();
        let wp = *awe.protect.get(&w.base).unwrap_or(&PAGE_READWRITE);
        let table = w.read(|t| {
            let mut t = t.with(0, t.pages(), |_| PageState::committed(PAGE_NOACCESS));
            let mut mapped: Vec<usize> = awe
                .at
                .keys()
                .filter(|&&a| a >= w.base && a < w.end())
                .map(|&a| (a - w.base) / p)
                .collect();
            mapped.sort_unstable();
            for i in mapped {
                t = t.with(i, i + 1, |_| PageState::committed(wp));
            }
            t
        });
        w.publish(table);
    }

    /// FreeUserPhysicalPages: frees frames (unmapping them first). Returns how many were
    /// freed; on an invalid frame it stops there with 87 (the count says how far it got).
    ///
    /// A frame is given back to the store (`phys_discard`) so it reads zero when handed out
    /// again; if that fails the frame is still freed but kept out of the free pool until a
    /// later discard works (never handed out with old data). A frame mapped meanwhile into a
    /// window not locked by this call makes it look again, a bounded number of times
    /// (`crate::os::retry`); if the frames keep moving, 487.
    pub fn free_physical_pages(&self, pfns: &[usize]) -> (usize, Result<()>) {
        let mut freed = 0;
        let r = crate::os::retry::bounded(
            Error::InvalidAddress("the frames kept being mapped into other windows"),
            || {
                let (n, r) = self.free_physical_attempt(&pfns[freed..]);
                freed += n;
                r
            },
        );
        (freed, r)
    }

    /// One attempt of [`Space::free_physical_pages`]: how many frames it freed, and the
    /// result (`None`: a frame moved to a window it did not lock; the rest is to do again).
    fn free_physical_attempt(&self, pfns: &[usize]) -> (usize, Option<Result<()>>) {
        // Which windows are involved (lock order: windows, then the table).
        let addrs: Vec<usize> = {
            let awe = self.awe();
            pfns.iter()
                .filter_map(|&f| f.checked_sub(1).and_then(|i| awe.mapped.get(&i).copied()))
                .collect()
        };
        let mut windows: Vec<Arc<Allocation>> = Vec::new();
        for a in addrs {
            if let Some(w) = self.find(a) {
                if !windows.iter().any(|x| Arc::ptr_eq(x, &w)) {
                    windows.push(w);
                }
            }
        }
        windows.sort_by_key(|w| w.base);
        let guards: Option<Vec<_>> = windows.iter().map(|w| w.begin()).collect();
        let Some(_guards) = guards else {
            return (0, None);
        };
        let mut awe = self.awe();
        let mut freed = 0;
        let mut result = Some(Ok(()));
        for &f in pfns {
            let Some(idx) = f.checked_sub(1).filter(|i| awe.owned.contains(i)) else {
                result = Some(Err(bad("a frame number was not allocated by this process")));
                break;
            };
            if let Some(addr) = awe.mapped.get(&idx).copied() {
                if !windows.iter().any(|w| addr >= w.base && addr < w.end()) {
                    // Mapped meanwhile into a window we did not lock: start over from here.
                    result = None;
                    break;
                }
                // Unmapping leaves the window page without a frame. If it fails, this frame
                // is not freed and the call stops here; a hole it left is filled and the
                // frame mapped again where the kernel allows (`set_page`), and the table
                // says whether it is.
                let host = awe_host(window_protect(&windows, &awe, addr));
                if let Err(e) = self.set_page(&mut awe, addr, Some(idx), None, host) {
                    result = Some(Err(Error::from_os(e)));
                    break;
                }
            }
            awe.owned.remove(&idx);
            if self.os.phys_discard(idx, 1).is_ok() {
                awe.free.push(idx);
            } else {
                awe.dirty.push(idx);
            }
            freed += 1;
        }
        for w in &windows {
            self.publish_window(w, &awe);
        }
        (freed, result)
    }

    /// VirtualProtect of a window (its lock held): PAGE_NOACCESS, PAGE_READONLY or
    /// PAGE_READWRITE apply to every mapped page of the window, now and when mapped later
    /// (Windows' AWE regions take only these three); returns the first page's old protection.
    pub(crate) fn protect_window(&self, w: &Allocation, start: usize, protect: u32) -> Result<u32> {
        if ![PAGE_NOACCESS, PAGE_READONLY, PAGE_READWRITE].contains(&protect) {
            return Err(Error::InvalidAddress(
                "AWE windows take only NOACCESS, READONLY or READWRITE",
            ));
        }
        let p = self.page();
        let mut awe = self.awe();
        let old_first = w.read(|t| t.run_at((start - w.base) / p).state.protect);
        let old = *awe.protect.get(&w.base).unwrap_or(&PAGE_READWRITE);
        let mut mapped: Vec<usize> = awe
            .at
            .keys()
            .copied()
            .filter(|&a| a >= w.base && a < w.end())
            .collect();
        // In address order: which pages a failure leaves changed does not depend on hashing.
        mapped.sort_unstable();
        for (n, &a) in mapped.iter().enumerate() {
            if let Err(e) = self.os.protect(a, p, awe_host(protect)) {
                for &b in &mapped[..n] {
                    if self.os.protect(b, p, awe_host(old)).is_err() {
                        // The page cannot get the window's protection back: take its frame
                        // out (the page becomes PAGE_NOACCESS, the frame stays owned, its
                        // data in the store), and the table says so.
                        if let Some(idx) = awe.at.get(&b).copied() {
                            let _ = self.set_page(&mut awe, b, Some(idx), None, awe_host(old));
                        }
                    }
                }
                self.publish_window(w, &awe);
                return Err(Error::from_os(e));
            }
        }
        awe.protect.insert(w.base, protect);
        self.publish_window(w, &awe);
        Ok(old_first)
    }

    /// A window is being released (its lock is held): its pages are no longer mapped.
    ///
    /// The caller holds the table (`awe`) from before the window's range was unmapped until
    /// now: a window made meanwhile at the same address, and the frames mapped into it, must
    /// not be taken for this one's.
    pub(crate) fn awe_window_released(awe: &mut Awe, w: &Allocation) {
        awe.protect.remove(&w.base);
        let gone: Vec<usize> = awe
            .at
            .keys()
            .copied()
            .filter(|&a| a >= w.base && a < w.end())
            .collect();
        for a in gone {
            if let Some(idx) = awe.at.remove(&a) {
                awe.mapped.remove(&idx);
            }
        }
    }
}

impl<O: Os> Space<O> {
    /// The frame mapped at each of the `n` pages from `addr` of an AWE window (`None` where no
    /// frame is mapped), for the safe face, which owns the frames it maps.
    pub(crate) fn window_frames(&self, addr: usize, n: usize) -> Vec<Option<usize>> {
        let p = self.page();
        let awe = self.awe();
        (0..n)
            .map(|i| awe.at.get(&(addr + i * p)).map(|&idx| idx + 1))
            .collect()
    }
}
