//! One allocation: what a single reserving call created.

use crate::engine::runs_cell::RunsCell;
use crate::rules::runs::{PageState, RunTable};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// How an allocation made with MEM_WRITE_WATCH learns about writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// The kernel tracks them (userfaultfd write-protection + PAGEMAP_SCAN): no signals, and
    /// writes made by system calls count.
    Kernel,
    /// Clean pages lack write permission; the first write faults and the SIGSEGV handler
    /// records it. System calls writing into a clean page fail with EFAULT.
    Signal,
}

/// What kind of memory an allocation holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllocKind {
    /// Ordinary VirtualAlloc memory.
    Normal,
    /// A VirtualAlloc2 placeholder (MEM_RESERVE_PLACEHOLDER): reserved, to be split,
    /// coalesced or replaced.
    Placeholder,
    /// MEM_LARGE_PAGES: committed at once, in huge pages.
    LargePages,
    /// MEM_PHYSICAL: an AWE window into which physical pages are mapped.
    Physical,
    /// A view of a section (MapViewOfFile*): MEM_MAPPED.
    View,
}

/// What a view maps: its section and where in it.
pub(crate) struct ViewOf {
    /// The section (kept alive by the view, O3).
    pub section: std::sync::Arc<crate::engine::section::Section>,
    /// Offset of the view's first byte in the section.
    pub offset: u64,
}

/// One allocation ("region" in Microsoft's words). Its identity (base, size,
/// AllocationProtect) never changes; its pages change only under [`Allocation::begin`], and
/// readers see them through a lock-free snapshot.
/// `repr(C)`, hot fields first: what VirtualQuery reads (base, size, protections, the runs
/// word, kind, fault flag) shares the first cache line with the reference count.
#[repr(C)]
pub(crate) struct Allocation {
    /// Base address (a multiple of the granularity).
    pub base: usize,
    /// Size in bytes (a multiple of the page size).
    pub size: usize,
    /// AllocationProtect: the protection given at reservation, modifiers included.
    pub alloc_protect: u32,
    /// The allocation-wide modifiers (PAGE_NOCACHE / PAGE_WRITECOMBINE bits).
    pub modifiers: u32,
    /// The page runs, published as immutable snapshots (one run packed in a word).
    runs: RunsCell,
    /// What kind of memory this is.
    pub kind: AllocKind,
    /// Whether page state may change behind our back by faults (guard pages consumed,
    /// signal-driven write watch): operations then read the kernel's protections first.
    fault_driven: AtomicBool,
    /// MEM_WRITE_WATCH, and how writes are tracked.
    pub watch: Option<WatchKind>,
    /// Made by replacing a placeholder (MEM_RELEASE|MEM_PRESERVE_PLACEHOLDER may turn it back).
    pub from_placeholder: bool,
    /// False once the allocation no longer owns its pages (released, or swapped out of the
    /// index by a placeholder split, coalesce, replace or preserve). Changed only while
    /// holding `busy`, before the kernel range changes hands, so the handler, which reads it
    /// after taking `busy`, never acts on pages another owner may hold.
    live: AtomicBool,
    /// The signal handler's lock: the thread id of the holder, 0 when free. Operations hold
    /// it for their whole duration (after `op`); the handler takes it for a few syscalls.
    busy: AtomicU32,
    /// The page size (for page-index arithmetic, also in the signal handler).
    pub page_size: usize,
    /// A process-unique number; the Rust face uses it to tell a reused base from its own.
    pub id: u64,
    /// Serializes the operations that change this allocation (held across their syscalls).
    op: Mutex<()>,
    /// Counts the operations begun on this allocation (bumped under `busy`): the handler's
    /// retry bound tells "nothing changed since the last retry" from "an operation ran".
    generation: AtomicU64,
    /// For a view: its section and offset.
    pub view: Option<ViewOf>,
    /// Private commit accounting (`engine/commit.rs`): whether this allocation's committed
    /// pages count towards the process's private commit.
    charged: bool,
}

thread_local! {
    /// This thread's kernel thread id, cached for operations (0: not read yet).
    static TID: Cell<u32> = const { Cell::new(0) };
}

/// The value of the handler lock while a signal handler holds it: never a thread id (Linux
/// thread ids stay below `PID_MAX_LIMIT`, 2^22).
pub(crate) const HANDLER: u32 = u32::MAX;

/// This thread's kernel thread id, for operations (not the signal handler): cached in a
/// thread-local, so an operation costs no extra system call. The handler never reads the
/// cache — a library loaded with `dlopen` may allocate on a thread's first TLS access — it
/// calls [`gettid`]; both give the same id, and a forked child resets the forking thread's
/// cache ([`fork_child_reset_tid`]).
pub(crate) fn my_tid() -> u32 {
    TID.with(|t| match t.get() {
        0 => {
            let id = gettid();
            t.set(id);
            id
        }
        id => id,
    })
}

/// In a forked child: the forking thread has a new kernel thread id; drop the parent's from
/// the cache (a later thread of the child could otherwise be given the same id and pass for
/// the holder of a handler lock). A plain TLS store: async-signal-safe.
pub(crate) fn fork_child_reset_tid() {
    TID.with(|t| t.set(0));
}

/// The calling thread's id, by a raw system call (async-signal-safe).
pub(crate) fn gettid() -> u32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// Held while an operation changes an allocation: the operation lock and the handler lock
/// (or the handler lock alone, for a quick operation: [`Allocation::begin_quick`]).
pub(crate) struct OpGuard<'a> {
    _op: Option<MutexGuard<'a, ()>>,
    busy: &'a AtomicU32,
}

impl Drop for OpGuard<'_> {
    fn drop(&mut self) {
        self.busy.store(0, Ordering::Release);
    }
}

impl Allocation {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        base: usize,
        size: usize,
        page_size: usize,
        alloc_protect: u32,
        modifiers: u32,
        id: u64,
        watch: Option<WatchKind>,
        initial: PageState,
    ) -> Allocation {
        Allocation {
            base,
            size,
            alloc_protect,
            modifiers,
            id,
            watch,
            kind: AllocKind::Normal,
            from_placeholder: false,
            view: None,
            page_size,
            op: Mutex::new(()),
            busy: AtomicU32::new(0),
            fault_driven: AtomicBool::new(
                watch == Some(WatchKind::Signal)
                    || initial.protect & crate::vocab::consts::PAGE_GUARD != 0,
            ),
            runs: RunsCell::new(RunTable::new(size / page_size, initial)),
            live: AtomicBool::new(true),
            generation: AtomicU64::new(0),
            charged: false,
        }
    }

    /// The same allocation, its committed pages charged to the process's private commit
    /// (`engine/commit.rs`) when `on`. Call before the allocation is shared.
    pub(crate) fn charged(mut self, on: bool) -> Allocation {
        debug_assert!(!self.charged, "charged twice");
        if on {
            self.charged = true;
            if self.is_live() {
                super::commit::add(self.committed_bytes());
            }
        }
        self
    }

    /// Committed bytes of the current run table (for the commit accounting; O(runs)). Call
    /// only where no other thread can publish: under the operation guard, or before the
    /// allocation is shared.
    fn committed_bytes(&self) -> usize {
        // SAFETY: the caller rules out concurrent publications (this function's contract).
        let pages = unsafe {
            self.runs
                .read_exclusive(self.pages(), super::commit::committed_pages)
        };
        pages * self.page_size
    }

    /// The same allocation, of another kind.
    pub(crate) fn of_kind(mut self, kind: AllocKind, from_placeholder: bool) -> Allocation {
        self.kind = kind;
        self.from_placeholder = from_placeholder;
        self
    }

    /// The same allocation as a view of `section` at `offset`.
    pub(crate) fn into_view(
        mut self,
        section: std::sync::Arc<crate::engine::section::Section>,
        offset: u64,
        from_placeholder: bool,
    ) -> Allocation {
        self.kind = AllocKind::View;
        self.from_placeholder = from_placeholder;
        self.view = Some(ViewOf { section, offset });
        self
    }

    /// One past the last byte.
    pub(crate) fn end(&self) -> usize {
        self.base + self.size
    }

    /// Whether clean writable pages are kept without write permission (signal-driven watch).
    pub(crate) fn armed(&self) -> bool {
        self.watch == Some(WatchKind::Signal)
    }

    /// Starts a change: takes the operation lock, then the handler lock. Returns `None` if
    /// the allocation was released meanwhile (the caller looks the address up again).
    pub(crate) fn begin(&self) -> Option<OpGuard<'_>> {
        self.enter(self.op.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Starts a quick change: takes the handler lock alone, without waiting (`None` if
    /// anyone holds it, or if the allocation was released: the caller takes the general
    /// path). Every operation holds the handler lock for its whole duration, so holding it
    /// excludes them all, and the fault handler; an operation that takes the operation lock
    /// meanwhile spins on the handler lock until this one ends. So a quick operation must be
    /// short and never wait for a lock that the holder of an operation lock may hold: it
    /// makes a few system calls and takes only leaf locks (the retire list, the metadata
    /// heap). VirtualProtect's common case, without the operation mutex's two atomic
    /// instructions.
    #[inline]
    pub(crate) fn begin_quick(&self) -> Option<OpGuard<'_>> {
        self.busy
            .compare_exchange(0, my_tid(), Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        self.counted_entry(None)
    }

    /// [`Allocation::begin`] without waiting for the operation lock: `None` if another
    /// thread holds it (or the allocation was released). Used by the fork machinery while it
    /// holds the index lock, where waiting could deadlock.
    pub(crate) fn try_begin(&self) -> Option<OpGuard<'_>> {
        let op = match self.op.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        self.enter(op)
    }

    /// With the operation lock held: takes the handler lock and counts the operation.
    fn enter<'a>(&'a self, op: MutexGuard<'a, ()>) -> Option<OpGuard<'a>> {
        let me = my_tid();
        while self
            .busy
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // Only a fault handler or a quick operation can hold it (we hold `op`): each is a
            // few syscalls long.
            std::hint::spin_loop();
        }
        self.counted_entry(Some(op))
    }

    /// With the handler lock just taken: counts the operation; the guard, if still live.
    #[inline]
    fn counted_entry<'a>(&'a self, op: Option<MutexGuard<'a, ()>>) -> Option<OpGuard<'a>> {
        // Under the handler lock, which every writer of `generation` holds: no locked
        // instruction needed.
        self.generation
            .store(self.generation.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        let g = OpGuard {
            _op: op,
            busy: &self.busy,
        };
        self.live.load(Ordering::Acquire).then_some(g)
    }

    /// The signal handler's side of the handler lock. Returns false if this thread already
    /// holds it (a fault inside one of our own operations, or a fault nested in the handler):
    /// the caller must then not release — and never waits for itself. Otherwise it spins
    /// while an operation on another thread holds it (a few system calls).
    ///
    /// The handler holds the lock as [`HANDLER`] (no thread id needed, so no system call on
    /// the common path); only when the lock is held by an operation does it ask the kernel
    /// for its own id (`gettid`), to tell its own interrupted operation from another thread's.
    pub(crate) fn handler_lock(&self) -> bool {
        let mut me = 0;
        loop {
            match self
                .busy
                .compare_exchange_weak(0, HANDLER, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(0) | Err(HANDLER) => {}
                Err(holder) => {
                    if me == 0 {
                        me = gettid();
                    }
                    if holder == me {
                        return false;
                    }
                }
            }
            std::hint::spin_loop();
        }
    }

    /// Releases the handler lock taken by [`Allocation::handler_lock`].
    pub(crate) fn handler_unlock(&self) {
        self.busy.store(0, Ordering::Release);
    }

    /// Whether faults may have changed page state behind the bookkeeping.
    pub(crate) fn fault_driven(&self) -> bool {
        self.fault_driven.load(Ordering::Acquire)
    }

    /// Records that faults may now change page state (guard pages were set).
    pub(crate) fn set_fault_driven(&self) {
        self.fault_driven.store(true, Ordering::Release);
    }

    /// Reads the current page runs (lock-free, async-signal-safe).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&RunTable) -> R) -> R {
        self.runs.read(self.pages(), f)
    }

    /// The number of pages (the page size is a power of two: a shift, not a division).
    #[inline]
    pub(crate) fn pages(&self) -> usize {
        self.size >> self.page_size.trailing_zeros()
    }

    /// The state of every page, if all pages share one (one load: no epoch, no table).
    #[inline]
    pub(crate) fn single_state(&self) -> Option<PageState> {
        self.runs.single()
    }

    /// Reads the current page runs while holding this allocation's operation guard: no
    /// publication can happen meanwhile, so no epoch is needed.
    pub(crate) fn read_held<R>(&self, guard: &OpGuard<'_>, f: impl FnOnce(&RunTable) -> R) -> R {
        debug_assert!(std::ptr::eq(guard.busy, &self.busy), "another allocation's guard");
        let _ = guard;
        // SAFETY: every publication happens under the operation guard (`publish`), which
        // the caller holds: nobody can publish during `f`.
        unsafe { self.runs.read_exclusive(self.pages(), f) }
    }

    /// Publishes new page runs. Call only while holding [`Allocation::begin`]'s guard, or
    /// before anyone else can see the allocation ([`Allocation::read_held`] relies on it).
    pub(crate) fn publish(&self, table: RunTable) {
        if self.charged && self.is_live() {
            // Serialized like the publication itself (this function's contract).
            let new = super::commit::committed_pages(&table) * self.page_size;
            let old = self.committed_bytes();
            super::commit::add(new.saturating_sub(old));
            super::commit::sub(old.saturating_sub(new));
        }
        // SAFETY: publications are serialized: every caller holds the operation guard, or
        // publishes before the allocation is shared (this function's contract).
        unsafe { self.runs.publish(table) };
    }

    /// [`Allocation::publish`] of a table whose committed pages are the current one's (a
    /// protection change): the commit charge stays as it is. Same contract as `publish`.
    #[inline]
    pub(crate) fn publish_protections(&self, table: RunTable) {
        debug_assert_eq!(
            super::commit::committed_pages(&table) * self.page_size,
            self.committed_bytes()
        );
        // SAFETY: as in `publish` (same contract).
        unsafe { self.runs.publish(table) };
    }

    /// Marks the allocation as no longer owning its pages (or owning them again after a
    /// failed release). Call only while holding [`Allocation::begin`]'s guard (the handler
    /// lock), and before the kernel range changes hands.
    pub(crate) fn set_live(&self, live: bool) {
        let was = self.live.swap(live, Ordering::AcqRel);
        if self.charged && was != live {
            // Pages given away no longer count; pages taken back count again (under the
            // operation guard: no publication meanwhile).
            let bytes = self.committed_bytes();
            if live {
                super::commit::add(bytes);
            } else {
                super::commit::sub(bytes);
            }
        }
    }

    /// Whether an operation (or the fault handler) holds the allocation now (its handler lock
    /// is taken): for the fork machinery, which must not fork while another thread does.
    pub(crate) fn in_operation(&self) -> bool {
        self.busy.load(Ordering::Acquire) != 0
    }

    /// Whether the allocation still owns its pages. The signal handler reads it after taking
    /// the handler lock.
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// The number of operations begun on this allocation (read under the handler lock).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        // An allocation dropped while it still owns its pages (never inserted, or its space
        // dropped) stops counting now; a released one stopped at `set_live(false)`.
        if self.charged && *self.live.get_mut() {
            // `&mut self`: nobody else can see it.
            super::commit::sub(self.committed_bytes());
        }
    }
}

// What VirtualQuery reads lies in the first cache line of the shared block (8 bytes of
// reference count, then the value), and the whole block stays within 128 bytes.
const _: () = assert!(std::mem::offset_of!(Allocation, from_placeholder) + 8 < 64);
const _: () = assert!(std::mem::size_of::<Allocation>() + 8 <= 128);
