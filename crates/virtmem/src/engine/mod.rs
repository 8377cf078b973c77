//! The engine: one address space — its allocations, their page runs, and the operations that
//! change them. Every operation reads as *validate → plan → apply → record*: the Windows rules
//! (`crate::rules`) validate and plan, the [`Os`] applies, and only then is the new state
//! published. If a kernel call fails, the kernel is put back as it was before anything is
//! recorded.
//!
//! Concurrency: the index of allocations is a `RwLock<BTreeMap>` whose write side is held
//! only to insert or remove an entry (never across a syscall). Each allocation has its own
//! operation lock, held across that operation's syscalls, so threads on different allocations
//! never wait for each other. Queries take only the index's read side and read page runs
//! from lock-free snapshots, so they never wait behind a syscall.

mod alloc;
pub mod fault;
pub mod snapshot;
mod allocation;
mod awe;
mod free;
mod lock;
mod placeholder;
mod protect;
mod query;
mod rangeset;
mod simulate;
mod sync;
mod watch;

pub(crate) use allocation::Allocation;
pub use allocation::{AllocKind, WatchKind};
pub use query::{MemoryInfo, RegionType, Regions, State};
pub use simulate::AccessError;

use crate::error::{Error, Result};
use crate::vocab::layout::Layout;
use crate::os::linux::LinuxOs;
use crate::os::Os;
use rangeset::RangeSet;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// An address space governed by the Windows rules.
///
/// [`Space::native`] is this process's real address space, shared by every face of virtmem.
/// Other instances (with other layouts or backends) are independent: each knows only its own
/// allocations.
pub struct Space<O: Os = LinuxOs> {
    layout: Layout,
    os: O,
    index: RwLock<BTreeMap<usize, Arc<Allocation>>>,
    /// Ranges of memory virtmem did not allocate that VirtualLock locked.
    foreign_locks: Mutex<RangeSet>,
    next_id: AtomicU64,
    /// The preferred [`WatchKind`] for new MEM_WRITE_WATCH allocations (0 kernel, 1 signal).
    watch_mode: AtomicU8,
    /// AWE physical pages and where they are mapped.
    awe: Mutex<awe::Awe>,
}

static NATIVE: OnceLock<Space<LinuxOs>> = OnceLock::new();

impl Space<LinuxOs> {
    /// This process's address space, on real memory.
    pub fn native() -> &'static Space<LinuxOs> {
        NATIVE.get_or_init(|| Space::new(Layout::native(), LinuxOs::new()))
    }
}

impl<O: Os> Space<O> {
    /// A new, empty address space with this layout and backend.
    pub fn new(layout: Layout, os: O) -> Space<O> {
        Space {
            layout,
            os,
            index: RwLock::new(BTreeMap::new()),
            foreign_locks: Mutex::new(RangeSet::default()),
            next_id: AtomicU64::new(1),
            awe: Mutex::new(awe::Awe::default()),
            watch_mode: AtomicU8::new(match std::env::var("VIRTMEM_WRITE_WATCH").as_deref() {
                Ok("signal") | Ok("fallback") => 1,
                _ => 0,
            }),
        }
    }

    /// Chooses how new MEM_WRITE_WATCH allocations track writes (existing ones keep theirs).
    /// The default is [`WatchKind::Kernel`] where the kernel supports it, unless the
    /// environment variable `VIRTMEM_WRITE_WATCH=signal` says otherwise.
    pub fn set_write_watch_mode(&self, kind: WatchKind) {
        let v = match kind {
            WatchKind::Kernel => 0,
            WatchKind::Signal => 1,
        };
        self.watch_mode.store(v, Ordering::Relaxed);
    }

    /// The kind new MEM_WRITE_WATCH allocations get: the preferred one, falling back to
    /// signals where the kernel cannot track writes.
    pub fn write_watch_mode(&self) -> WatchKind {
        if self.watch_mode.load(Ordering::Relaxed) == 0 && self.os.watch_supported() {
            WatchKind::Kernel
        } else {
            WatchKind::Signal
        }
    }

    /// The layout (page size, granularity, limits).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The backend.
    pub fn os(&self) -> &O {
        &self.os
    }

    /// The allocation containing `addr`, if any.
    pub(crate) fn find(&self, addr: usize) -> Option<Arc<Allocation>> {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        let (_, a) = index.range(..=addr).next_back()?;
        (addr < a.end()).then(|| a.clone())
    }

    /// The allocations overlapping `[start, end)`, ascending.
    pub(crate) fn overlapping(&self, start: usize, end: usize) -> Vec<Arc<Allocation>> {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        if let Some((_, a)) = index.range(..start).next_back() {
            if a.end() > start {
                out.push(a.clone());
            }
        }
        out.extend(index.range(start..end).map(|(_, a)| a.clone()));
        out
    }

    /// The last allocation ending at or before `addr` and the first starting after it:
    /// the neighbours that bound a region virtmem does not manage.
    pub(crate) fn neighbours(&self, addr: usize) -> (usize, usize) {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        let prev_end = index.range(..=addr).next_back().map_or(0, |(_, a)| a.end());
        let next = index
            .range(addr + 1..)
            .next()
            .map_or(usize::MAX, |(&b, _)| b);
        (prev_end, next)
    }

    /// Runs `f` on the live allocation containing `addr` with its operation lock held, or
    /// returns `missing` if no allocation contains it.
    pub(crate) fn with_allocation<R>(
        &self,
        addr: usize,
        missing: Error,
        f: impl FnOnce(&Arc<Allocation>) -> Result<R>,
    ) -> Result<R> {
        loop {
            let a = self.find(addr).ok_or(missing)?;
            let guard = a.begin();
            if guard.is_some() {
                let r = f(&a);
                drop(guard);
                return r;
            }
            drop(guard);
            // Released while we waited: look again.
        }
    }

    fn insert(&self, a: Allocation) -> Arc<Allocation> {
        let a = Arc::new(a);
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        debug_assert!(index
            .range(..a.end())
            .next_back()
            .is_none_or(|(_, p)| p.end() <= a.base));
        index.insert(a.base, a.clone());
        a
    }

    fn remove(&self, base: usize) {
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        index.remove(&base);
    }

    fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Every allocation's `(base, size, id)`, ascending (a consistent list at one instant).
    pub fn allocations(&self) -> Vec<(usize, usize, u64)> {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        index.values().map(|a| (a.base, a.size, a.id)).collect()
    }

    /// The id of the live allocation based at `base`, if there is one.
    pub fn allocation_id(&self, base: usize) -> Option<u64> {
        self.find(base).filter(|a| a.base == base).map(|a| a.id)
    }

    /// Number of page runs of the allocation containing `addr` (its metadata size).
    pub fn run_count(&self, addr: usize) -> Option<usize> {
        self.find(addr).map(|a| a.read(|t| t.run_count()))
    }

    pub(crate) fn page(&self) -> usize {
        self.layout.page_size
    }
}
