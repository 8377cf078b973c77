//! The index of a space's allocations: the ordered B-tree (`index.rs`, under a lock: the
//! authority for placement, ranges and iteration) and its lock-free mirror for lookups
//! (`radix.rs`). Changes go through [`DirWrite`], which keeps both in step; lookups by
//! address go through [`Directory::lookup`] without any lock.
//!
//! **Lifetime of what a lookup finds.** A lock-free reader holds no reference count, only an
//! epoch pin. So the reference the B-tree held on a removed allocation is not dropped: it is
//! retired through the epochs (`snapshot.rs`) after the radix entry is cleared, and so lives
//! until every reader that could have found the allocation has left.

use super::allocation::Allocation;
use super::index::Index;
use super::radix::{Found, Radix, SHARED};
use super::snapshot::{retire_raw, Pin};
use crate::os::linux::metaheap::MetaArc as Arc;
use crate::vocab::layout::Layout;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The allocations of a space, by base address.
pub(crate) struct Directory {
    tree: RwLock<Index<Arc<Allocation>>>,
    radix: Radix,
}

/// What [`Directory::lookup`] found for an address.
pub(crate) enum Lookup<'p> {
    /// The allocation containing the address.
    In(&'p Allocation),
    /// No allocation contains the address.
    Free,
    /// The lock-free mirror cannot tell (a granule several allocations share): ask the
    /// ordered index.
    Ask,
}

impl Directory {
    /// An empty directory for `layout`'s address space.
    pub(crate) fn new(layout: &Layout) -> Directory {
        Directory {
            tree: RwLock::new(Index::new()),
            radix: Radix::new(layout.granularity, layout.max_address),
        }
    }

    /// The ordered index, for reading.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Index<Arc<Allocation>>> {
        self.tree.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The ordered index, for changing (both sides stay in step through the guard).
    pub(crate) fn write(&self) -> DirWrite<'_> {
        DirWrite {
            tree: self.tree.write().unwrap_or_else(|e| e.into_inner()),
            radix: &self.radix,
        }
    }

    /// The allocation containing `addr`, without locks: valid while `pin` lives.
    #[inline]
    pub(crate) fn lookup<'p>(&self, _pin: &'p Pin, addr: usize) -> Lookup<'p> {
        match self.radix.lookup(addr) {
            Found::Nothing => Lookup::Free,
            Found::Shared => Lookup::Ask,
            Found::Block(p) => {
                // SAFETY: a block the radix lists is referenced by the B-tree, or by the
                // retire list until every reader pinned before its removal (as we are, if it
                // was removed since we loaded it) has left: it lives while `_pin` does.
                let a: &'p Allocation = unsafe { Arc::value_of_raw(p) };
                if a.base <= addr && addr < a.end() {
                    Lookup::In(a)
                } else {
                    // The unused head or tail of a granule it has alone: no other allocation
                    // is there (the granule would be shared).
                    Lookup::Free
                }
            }
        }
        }

    /// A counted reference to `a`, found by [`Directory::lookup`] under `pin`.
    pub(crate) fn counted(&self, _pin: &Pin, a: &Allocation) -> Arc<Allocation> {
        // SAFETY: `a` came from `lookup` under `_pin`: the block lives, so its count is not
        // zero (the B-tree's or the retire list's reference). `a` points at the value inside
        // a `MetaArc` block; `clone_raw` wants the block.
        unsafe { Arc::clone_raw(Arc::raw_of_value(a)) }
    }
}

/// The directory held for changing: reads see the ordered index; `insert` and `remove`
/// update both sides.
pub(crate) struct DirWrite<'a> {
    tree: RwLockWriteGuard<'a, Index<Arc<Allocation>>>,
    radix: &'a Radix,
}

impl std::ops::Deref for DirWrite<'_> {
    type Target = Index<Arc<Allocation>>;
    fn deref(&self) -> &Self::Target {
        &self.tree
    }
}

impl DirWrite<'_> {
    /// Adds `a` (whose range overlaps no listed allocation).
    pub(crate) fn insert(&mut self, a: Arc<Allocation>) {
        let (base, end) = (a.base, a.end());
        let raw = Arc::as_raw(&a) as usize;
        self.tree.insert(base, a);
        let (full_lo, full_hi, first, last) = self.radix.granules(base, end);
        self.radix.set(full_lo, full_hi, raw);
        self.fix_edges(first, last, full_lo, full_hi);
    }

    /// Removes the allocation based at `base`. Its B-tree reference is retired, not dropped:
    /// lock-free readers may still be looking at it.
    pub(crate) fn remove(&mut self, base: usize) {
        let Some(a) = self.tree.remove(base) else {
            return;
        };
        let (full_lo, full_hi, first, last) = self.radix.granules(a.base, a.end());
        self.radix.set(full_lo, full_hi, 0);
        self.fix_edges(first, last, full_lo, full_hi);
        // SAFETY: the radix no longer lists it (readers pinned from now on cannot find it);
        // `drop_arc` drops this one reference, later.
        unsafe { retire_raw(Arc::into_raw(a), drop_arc) };
    }

    /// Replaces the allocations based at `old` by `new` (covering part or all of their
    /// range), atomically for every address some `new` covers: its granules go straight from
    /// an old allocation to a new one, never through "free".
    pub(crate) fn replace(&mut self, old: &[usize], new: &[Arc<Allocation>]) {
        let mut gone = crate::os::linux::metaheap::meta_vec::<Arc<Allocation>>();
        for &b in old {
            gone.extend(self.tree.remove(b));
        }
        for a in new {
            self.tree.insert(a.base, a.clone());
            let (full_lo, full_hi, _, _) = self.radix.granules(a.base, a.end());
            self.radix.set(full_lo, full_hi, Arc::as_raw(a) as usize);
        }
        for a in new {
            let (full_lo, full_hi, first, last) = self.radix.granules(a.base, a.end());
            self.fix_edges(first, last, full_lo, full_hi);
        }
        // The old granules no new allocation touches are free now.
        let mut taken = crate::os::linux::metaheap::meta_vec::<(usize, usize)>();
        for a in new {
            let (_, _, first, last) = self.radix.granules(a.base, a.end());
            taken.push((first, last + 1));
        }
        taken.sort_unstable();
        for a in &gone {
            let (full_lo, full_hi, first, last) = self.radix.granules(a.base, a.end());
            let mut at = full_lo;
            for &(lo, hi) in taken.iter() {
                if hi <= at || lo >= full_hi {
                    continue;
                }
                self.radix.set(at, lo.max(at), 0);
                at = at.max(hi);
            }
            self.radix.set(at, full_hi, 0);
            self.fix_edges(first, last, full_lo, full_hi);
        }
        for a in gone {
            // SAFETY: as in `remove`: no longer listed by the radix.
            unsafe { retire_raw(Arc::into_raw(a), drop_arc) };
        }
    }

    /// Recomputes the granules `first` and `last` if the range `[full_lo, full_hi)` does not
    /// wholly cover them.
    fn fix_edges(&mut self, first: usize, last: usize, full_lo: usize, full_hi: usize) {
        if first < full_lo || first >= full_hi {
            self.recompute(first);
        }
        if last != first && (last < full_lo || last >= full_hi) {
            self.recompute(last);
        }
    }

    /// Sets granule `g` from the B-tree: nothing, the one allocation overlapping it, or
    /// [`SHARED`].
    fn recompute(&mut self, g: usize) {
        let shift = self.radix.shift();
        let (gs, ge) = (g << shift, (g + 1) << shift);
        let mut seen = 0;
        let mut value = 0;
        if let Some((_, a)) = self.tree.floor(gs) {
            if a.end() > gs {
                seen += 1;
                value = Arc::as_raw(a) as usize;
            }
        }
        for (b, a) in self.tree.from(gs + 1) {
            if b >= ge || seen > 1 {
                break;
            }
            seen += 1;
            value = Arc::as_raw(a) as usize;
        }
        self.radix
            .set(g, g + 1, if seen > 1 { SHARED } else { value });
    }
}

/// Drops a retired B-tree reference.
///
/// # Safety
/// `p` came from `MetaArc::<Allocation>::into_raw`, passed once.
unsafe fn drop_arc(p: *mut ()) {
    // SAFETY: the caller's contract.
    drop(unsafe { Arc::<Allocation>::from_raw(p) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::runs::PageState;
    use proptest::prelude::*;

    const P: usize = 0x1000;
    const G: usize = 0x10000;

    fn alloc(base: usize, size: usize, id: u64) -> Arc<Allocation> {
        Arc::new(Allocation::new(
            base,
            size,
            P,
            0x04,
            0,
            id,
            None,
            PageState::RESERVED,
        ))
    }

    /// The B-tree's answer for `addr`: the base of the allocation containing it.
    fn by_tree(d: &Directory, addr: usize) -> Option<usize> {
        let t = d.read();
        t.floor(addr).filter(|(_, a)| addr < a.end()).map(|(b, _)| b)
    }

    /// How many allocations overlap the granule of `addr`.
    fn sharing(d: &Directory, addr: usize) -> usize {
        let (gs, ge) = (addr & !(G - 1), (addr & !(G - 1)) + G);
        let t = d.read();
        t.from(0).filter(|(_, a)| a.base < ge && a.end() > gs).count()
    }

    fn check(d: &Directory, addr: usize) -> Result<(), TestCaseError> {
        let pin = crate::engine::snapshot::pin();
        match d.lookup(&pin, addr) {
            Lookup::In(a) => prop_assert_eq!(Some(a.base), by_tree(d, addr)),
            Lookup::Free => prop_assert_eq!(None, by_tree(d, addr)),
            Lookup::Ask => prop_assert!(sharing(d, addr) >= 2),
        }
        Ok(())
    }

    proptest! {
        /// Random inserts, removes and replacements of page-aligned (so sometimes
        /// granule-sharing) allocations: the lock-free lookup agrees with the B-tree.
        #[test]
        fn lookups_agree_with_the_ordered_index(
            ops in proptest::collection::vec((0u8..3, 0usize..64, 1usize..40, 0usize..4), 1..60),
            probes in proptest::collection::vec(0usize..(64 * 16 + 64) * P, 40),
        ) {
            let d = Directory::new(&Layout::WIN64);
            let mut id = 0;
            for (op, slot, pages, split) in ops {
                let base = 0x100_0000 + slot * 16 * P + (slot % 3) * P;
                id += 1;
                let mut w = d.write();
                let overlapping: Vec<(usize, usize)> = w
                    .from(0)
                    .filter(|(_, a)| a.base < base + pages * P && a.end() > base)
                    .map(|(b, a)| (b, a.size))
                    .collect();
                match op {
                    0 if overlapping.is_empty() => w.insert(alloc(base, pages * P, id)),
                    1 => {
                        if let Some(&(b, _)) = overlapping.first() {
                            w.remove(b);
                        }
                    }
                    2 => {
                        // Split an existing allocation in two (a placeholder split).
                        if let Some(&(b, size)) = overlapping.first() {
                            let cut = (split + 1).min(size / P - 1).max(1) * P;
                            if cut < size {
                                w.replace(&[b], &[alloc(b, cut, id), alloc(b + cut, size - cut, id + 1000)]);
                            }
                        }
                    }
                    _ => {}
                }
                drop(w);
                for &p in &probes {
                    check(&d, 0x100_0000 + p)?;
                }
            }
        }
    }

    /// Readers look up addresses while a writer inserts, splits and removes allocations
    /// there: whatever a reader finds is a whole allocation containing the address (a freed
    /// block would show another base or size), never a torn or freed one.
    #[test]
    fn readers_never_see_a_freed_allocation() {
        let d = std::sync::Arc::new(Directory::new(&Layout::WIN64));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let base = 0x2000_0000usize;
        let readers: Vec<_> = (0..2)
            .map(|t| {
                let (d, stop) = (d.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut i = t;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let addr = base + (i * 7919 % 64) * P;
                        i += 1;
                        let pin = crate::engine::snapshot::pin();
                        if let Lookup::In(a) = d.lookup(&pin, addr) {
                            assert!(a.base <= addr && addr < a.end());
                            assert_eq!(a.size % P, 0);
                            assert_eq!(a.id % 1000, 7);
                        }
                    }
                })
            })
            .collect();
        for round in 0..3000u64 {
            let id = round * 1000 + 7;
            d.write().insert(alloc(base, 64 * P, id));
            d.write()
                .replace(&[base], &[alloc(base, 8 * P, id), alloc(base + 8 * P, 56 * P, id)]);
            d.write().remove(base);
            d.write().remove(base + 8 * P);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
    }
}
