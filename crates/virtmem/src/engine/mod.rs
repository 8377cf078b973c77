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
mod commit;
mod handles;
pub(crate) mod section;
mod view;
mod fault_state;
mod fault_table;
mod directory;
mod index;
mod owner;
mod allocation;
mod awe;
pub mod fault;
mod fork;
mod free;
mod lock;
// The NT layer's engine requests (win32/nt).
mod nt;
mod placeholder;
// Process memory status, working set, resource notifications, DEP (issue 15 item 2).
pub(crate) mod process_status;
pub(crate) mod working_set;
mod probe;
mod process;
mod protect;
mod query;
mod radix;
mod recent;
mod rangeset;
mod runs_cell;
mod simulate;
mod status;
pub mod snapshot;
mod sync;
mod watch;

// Heaps (issue 16): HeapCreate/HeapAlloc/... on this engine's reserve and commit.
pub mod heap;
pub use heap::{
    FreeStep, Heaps, WalkEntry as HeapWalkEntry, ALLOC_GENERAL, ALLOC_LARGE, ALLOC_LOOKASIDE,
    UNSERIALIZED_FREED, UNSERIALIZED_GENERAL,
};
// Global and Local memory (issue 16 item 2) on the process heap.
pub mod global;
pub use global::Globals;

pub(crate) use allocation::Allocation;
pub(crate) use handles::{Entry as HandleEntry, Object as HandleObject};
pub(crate) use owner::as_owner;
pub use allocation::{AllocKind, WatchKind};
pub use query::{MemoryInfo, RegionType, State};
pub(crate) use process::Target;
pub use status::MemoryStatus;
pub use section::{Created, SectionSource};
pub use view::MapRequest;
pub use nt::{MappedName, RegionInfo, SameFile, WorkingSetPage};
pub use simulate::AccessError;

use crate::error::{Error, Result};
use crate::os::linux::LinuxOs;
use crate::os::Os;
use crate::vocab::layout::Layout;
use rangeset::RangeSet;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use crate::os::linux::metaheap::MetaArc as Arc;
use std::sync::{Mutex, OnceLock};

/// What [`Space::begin_at`] found.
pub(crate) enum BeginAt<'s> {
    /// The allocation, its operation guard held.
    Held(Held<'s>),
    /// No allocation (of the expected owner) contains the address.
    Nothing,
    /// The allocation was released while we waited for its guard: look again.
    Lost,
}

/// An allocation whose operation guard is held ([`Space::begin_at`]).
pub(crate) struct Held<'s> {
    // Dropped first (fields drop in order): the guard, then what keeps `a` alive.
    guard: allocation::OpGuard<'s>,
    a: &'s Allocation,
    _keep: Option<Arc<Allocation>>,
}

impl<'s> Held<'s> {
    /// The allocation.
    pub(crate) fn a(&self) -> &Allocation {
        self.a
    }

    /// Its operation guard.
    pub(crate) fn guard(&self) -> &allocation::OpGuard<'s> {
        &self.guard
    }

    /// A counted reference to it (for code that keeps or needs one).
    pub(crate) fn counted(&self) -> Arc<Allocation> {
        // SAFETY: while the guard is held the allocation is live, so in the index: its block
        // is alive and its count is not zero.
        unsafe { Arc::clone_raw(Arc::raw_of_value(self.a)) }
    }
}

/// An address space governed by the Windows rules.
///
/// [`Space::native`] is this process's real address space, shared by every face of virtmem.
/// Other instances (with other layouts or backends) are independent: each knows only its own
/// allocations.
pub struct Space<O: Os = LinuxOs> {
    layout: Layout,
    os: O,
    index: directory::Directory,
    /// Ranges of memory virtmem did not allocate that VirtualLock locked.
    foreign_locks: Mutex<RangeSet>,
    next_id: AtomicU64,
    /// The preferred [`WatchKind`] for new MEM_WRITE_WATCH allocations (0 kernel, 1 signal).
    watch_mode: AtomicU8,
    /// AWE physical pages and where they are mapped.
    awe: Mutex<awe::Awe>,
    /// Section and file handles.
    handles: handles::Handles,
    /// Named sections of this space (while a handle lives).
    names: section::Names,
    /// A process-unique number (`recent.rs` tags a thread's remembered allocation with it).
    uid: u64,
}

static NATIVE: OnceLock<Space<LinuxOs>> = OnceLock::new();

impl Space<LinuxOs> {
    /// This process's address space, on real memory.
    pub(crate) fn native() -> &'static Space<LinuxOs> {
        NATIVE.get_or_init(|| {
            // A child forked from this process can use the space too (`fork.rs`).
            fork::register();
            // SAFETY: the native space is reached only through the faces, whose safe
            // functions act on memory their caller owns and whose raw ones are `unsafe`.
            Space::new(Layout::native(), unsafe { LinuxOs::new() })
        })
    }

    /// This process's address space, for virtmem's own tests.
    ///
    /// # Safety
    ///
    /// Every operation through it may unmap or re-protect any address: the caller must use it
    /// only on memory no live Rust reference can see.
    #[cfg(feature = "internals")]
    pub unsafe fn process() -> &'static Space<LinuxOs> {
        Space::native()
    }
}

impl<O: Os> Space<O> {
    /// A new, empty address space with this layout and backend.
    pub fn new(layout: Layout, os: O) -> Space<O> {
        Space {
            layout,
            os,
            index: directory::Directory::new(&layout),
            foreign_locks: Mutex::new(RangeSet::default()),
            next_id: AtomicU64::new(1),
            awe: Mutex::new(awe::Awe::default()),
            handles: handles::Handles::default(),
            names: section::Names::default(),
            uid: recent::new_space_uid(),
            watch_mode: AtomicU8::new(u8::from(crate::os::linux::sysfacts::env_is(
                c"VIRTMEM_WRITE_WATCH",
                &[b"signal", b"fallback"],
            ))),
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

    /// The allocation containing `addr`, if any (only the expected owner's inside
    /// [`as_owner`]).
    pub(crate) fn find(&self, addr: usize) -> Option<Arc<Allocation>> {
        {
            let pin = snapshot::pin();
            match self.index.lookup(&pin, addr) {
                directory::Lookup::In(a) => {
                    return owner::admits(a.id).then(|| self.index.counted(&pin, a));
                }
                directory::Lookup::Free => return None,
                directory::Lookup::Ask => {}
            }
        }
        let index = self.index.read();
        let (_, a) = index.floor(addr)?;
        (addr < a.end() && owner::admits(a.id)).then(|| a.clone())
    }

    /// Finds the allocation containing `addr` (only the expected owner's inside
    /// [`as_owner`]) and takes its operation guard, without touching a reference count: the
    /// lookup is lock-free, under an epoch pin that is dropped once the guard is held (a live
    /// allocation whose guard is held stays in the index, whose reference keeps it alive).
    pub(crate) fn begin_at(&self, addr: usize) -> BeginAt<'_> {
        let pin = snapshot::pin();
        match self.index.lookup(&pin, addr) {
            directory::Lookup::In(a) if owner::admits(a.id) => {
                // SAFETY: the pin keeps `a` alive until the guard is taken; from then on, the
                // guard keeps it live and so in the index (removal needs the guard), and the
                // index's reference keeps it alive. `Held` drops its guard before anything
                // else and never hands out `a` beyond its own lifetime.
                let a: &Allocation = unsafe { &*(a as *const Allocation) };
                let Some(guard) = a.begin() else {
                    return BeginAt::Lost;
                };
                drop(pin);
                BeginAt::Held(Held {
                    guard,
                    a,
                    _keep: None,
                })
            }
            directory::Lookup::In(_) | directory::Lookup::Free => BeginAt::Nothing,
            directory::Lookup::Ask => {
                drop(pin);
                let Some(arc) = self.find(addr) else {
                    return BeginAt::Nothing;
                };
                // SAFETY: `arc` is kept in the `Held` (dropped after the guard).
                let a: &Allocation = unsafe { &*Arc::as_ptr(&arc) };
                match a.begin() {
                    Some(guard) => BeginAt::Held(Held {
                        guard,
                        a,
                        _keep: Some(arc),
                    }),
                    None => BeginAt::Lost,
                }
            }
        }
    }

    /// The allocations overlapping `[start, end)`, ascending (only the expected owner's
    /// inside [`as_owner`]).
    pub(crate) fn overlapping(
        &self,
        start: usize,
        end: usize,
    ) -> crate::os::linux::metaheap::MetaVec<Arc<Allocation>> {
        let index = self.index.read();
        let mut out = crate::os::linux::metaheap::meta_vec();
        if let Some((_, a)) = index.below(start) {
            if a.end() > start {
                out.push(a.clone());
            }
        }
        out.extend(index.from(start).take_while(|&(b, _)| b < end).map(|(_, a)| a.clone()));
        out.retain(|a| owner::admits(a.id));
        out
    }

    /// Whether any page of `[start, end)` was reset (MEM_RESET) and not undone since: the
    /// kernel may replace its contents by zeros at any moment.
    pub(crate) fn has_reset_pages(&self, start: usize, end: usize) -> bool {
        self.overlapping(start, end).iter().any(|a| {
            let p = self.page();
            let s = (start.max(a.base) - a.base) / p;
            let e = (end.min(a.end()) - a.base).div_ceil(p);
            a.read(|t| t.runs_in(s, e).any(|r| r.state.reset))
        })
    }

    /// The last allocation ending at or before `addr` and the first starting after it:
    /// the neighbours that bound a region virtmem does not manage.
    pub(crate) fn neighbours(&self, addr: usize) -> (usize, usize) {
        let index = self.index.read();
        let prev_end = index.floor(addr).map_or(0, |(_, a)| a.end());
        let next = addr
            .checked_add(1)
            .and_then(|k| index.from(k).next())
            .map_or(usize::MAX, |(b, _)| b);
        (prev_end, next)
    }

    /// Runs `f` on the live allocation containing `addr` with its operation lock held, or
    /// returns `missing` if no allocation contains it. An allocation released (or replaced)
    /// while we waited for its lock is looked up again, a bounded number of times
    /// (`crate::os::retry`); if it keeps changing, the call ends with `missing` too.
    pub(crate) fn with_allocation<R>(
        &self,
        addr: usize,
        missing: Error,
        f: impl FnOnce(&Arc<Allocation>) -> Result<R>,
    ) -> Result<R> {
        let mut f = Some(f);
        crate::os::retry::bounded(missing, || {
            let Some(a) = self.find(addr) else {
                return Some(Err(missing));
            };
            // None: released while we waited; look again.
            let guard = a.begin()?;
            let f = f
                .take()
                .expect("runs once: every later attempt returns first");
            let r = f(&a);
            drop(guard);
            Some(r)
        })
    }

    fn insert(&self, a: Allocation) -> Arc<Allocation> {
        let charge = self.charges_commit(&a);
        let a = Arc::new(a.charged(charge));
        let mut index = self.index.write();
        debug_assert!(index.below(a.end()).is_none_or(|(_, p)| p.end() <= a.base));
        index.insert(a.clone());
        a
    }

    fn remove(&self, base: usize) {
        let mut index = self.index.write();
        index.remove(base);
    }

    fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Every allocation's `(base, size, id)`, ascending (a consistent list at one instant).
    pub fn allocations(&self) -> Vec<(usize, usize, u64)> {
        let index = self.index.read();
        index.from(0).map(|(_, a)| (a.base, a.size, a.id)).collect()
    }

    /// The id of the live allocation based at `base`, if there is one.
    pub fn allocation_id(&self, base: usize) -> Option<u64> {
        self.find(base).filter(|a| a.base == base).map(|a| a.id)
    }

    /// Number of page runs of the allocation containing `addr` (its metadata size).
    pub fn run_count(&self, addr: usize) -> Option<usize> {
        self.find(addr).map(|a| a.read(|t| t.run_count()))
    }

    /// Whether `addr` lies in a view of a section.
    pub(crate) fn is_view(&self, addr: usize) -> bool {
        self.find(addr).is_some_and(|a| a.kind == AllocKind::View)
    }

    /// The handle table (sections and files).
    pub(crate) fn handles(&self) -> &handles::Handles {
        &self.handles
    }

    /// CloseHandle: closes a section or file handle (ERROR_INVALID_HANDLE if it is not open).
    /// A section lives on while other handles or views refer to it.
    pub fn close_handle(&self, h: usize) -> Result<()> {
        let entry = self.handles.remove(h)?;
        self.handle_closed(entry);
        Ok(())
    }

    /// What closing a handle does to its object (a file closes when its last handle does).
    fn handle_closed(&self, entry: handles::Entry) {
        match entry.object {
            handles::Object::File(_)
            | handles::Object::MemoryNotification(_)
            | handles::Object::Process(_) => {}
            handles::Object::Section(s) => self.section_handle_closed(&s),
        }
    }

    pub(crate) fn page(&self) -> usize {
        self.layout.page_size
    }
}
