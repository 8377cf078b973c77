//! One allocation: what a single reserving call created.

use crate::rules::runs::{PageState, RunTable};
use crate::engine::snapshot::SnapshotCell;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
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
}

/// One allocation ("region" in Microsoft's words). Its identity (base, size,
/// AllocationProtect) never changes; its pages change only under [`Allocation::begin`], and
/// readers see them through a lock-free snapshot.
pub(crate) struct Allocation {
    /// Base address (a multiple of the granularity).
    pub base: usize,
    /// Size in bytes (a multiple of the page size).
    pub size: usize,
    /// AllocationProtect: the protection given at reservation, modifiers included.
    pub alloc_protect: u32,
    /// The allocation-wide modifiers (PAGE_NOCACHE / PAGE_WRITECOMBINE bits).
    pub modifiers: u32,
    /// A process-unique number; the Rust face uses it to tell a reused base from its own.
    pub id: u64,
    /// MEM_WRITE_WATCH, and how writes are tracked.
    pub watch: Option<WatchKind>,
    /// What kind of memory this is.
    pub kind: AllocKind,
    /// Made by replacing a placeholder (MEM_RELEASE|MEM_PRESERVE_PLACEHOLDER may turn it back).
    pub from_placeholder: bool,
    /// The page size (for page-index arithmetic, also in the signal handler).
    pub page_size: usize,
    /// Serializes the operations that change this allocation (held across their syscalls).
    op: Mutex<()>,
    /// The signal handler's lock: the thread id of the holder, 0 when free. Operations hold
    /// it for their whole duration (after `op`); the handler takes it for a few syscalls.
    busy: AtomicU32,
    /// Whether page state may change behind our back by faults (guard pages consumed,
    /// signal-driven write watch): operations then read the kernel's protections first.
    fault_driven: AtomicBool,
    /// The page runs, published as immutable snapshots.
    runs: SnapshotCell<RunTable>,
    /// False once released.
    live: AtomicBool,
}

thread_local! {
    static TID: Cell<u32> = const { Cell::new(0) };
}

/// This thread's kernel thread id, cached in a thread-local (a plain TLS load after the
/// first call, so the signal handler can use it too: no allocation, no lazy destructor).
pub(crate) fn my_tid() -> u32 {
    TID.with(|t| {
        if t.get() == 0 {
            t.set(gettid());
        }
        t.get()
    })
}

/// The calling thread's id, by a raw system call (async-signal-safe).
pub(crate) fn gettid() -> u32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// Held while an operation changes an allocation: the operation lock and the handler lock.
pub(crate) struct OpGuard<'a> {
    _op: MutexGuard<'a, ()>,
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
            page_size,
            op: Mutex::new(()),
            busy: AtomicU32::new(0),
            fault_driven: AtomicBool::new(
                watch == Some(WatchKind::Signal) || initial.protect & crate::vocab::consts::PAGE_GUARD != 0,
            ),
            runs: SnapshotCell::new(RunTable::new(size / page_size, initial)),
            live: AtomicBool::new(true),
        }
    }

    /// The same allocation, of another kind.
    pub(crate) fn of_kind(mut self, kind: AllocKind, from_placeholder: bool) -> Allocation {
        self.kind = kind;
        self.from_placeholder = from_placeholder;
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
        let op = self.op.lock().unwrap_or_else(|e| e.into_inner());
        let me = my_tid();
        while self
            .busy
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // Only a fault handler can hold it (we hold `op`): it is a few syscalls long.
            std::hint::spin_loop();
        }
        let g = OpGuard {
            _op: op,
            busy: &self.busy,
        };
        self.live.load(Ordering::Acquire).then_some(g)
    }

    /// The signal handler's side of the handler lock. Returns false if this thread already
    /// holds it (a fault inside one of our own operations): the caller must then not release.
    pub(crate) fn handler_lock(&self, tid: u32) -> bool {
        loop {
            match self
                .busy
                .compare_exchange_weak(0, tid, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(holder) if holder == tid => return false,
                Err(_) => std::hint::spin_loop(),
            }
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
        self.runs.read(f)
    }

    /// Publishes new page runs. Call only while holding [`Allocation::begin`]'s guard.
    pub(crate) fn publish(&self, table: RunTable) {
        self.runs.publish(table);
    }

    /// Marks the allocation released (or live again after a failed release).
    pub(crate) fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Release);
    }
}
