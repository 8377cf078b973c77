//! Fork safety: a child forked from a process that uses virtmem — on any thread, at any time
//! outside a virtmem call of the forking thread, while other threads may be inside virtmem
//! calls — can use the whole API.
//!
//! `pthread_atfork` handlers, registered once when [`Space::native`] is created:
//!
//! * **prepare** waits until no virtmem call is half-way: it takes every lock a call may hold
//!   across a point where `fork` could happen, in the order the calls take them —
//!   1. every live allocation's operation guard ([`Allocation::begin`]: the operation mutex,
//!      then the handler spin lock), in address order (the order multi-allocation calls use);
//!   2. the index's write lock (allocations that appeared meanwhile are taken with
//!      [`Allocation::try_begin`]; if one is busy, everything is released and prepare starts
//!      over, since its holder may be waiting for the index; likewise if, once the fault
//!      table's lock is held, an allocation it lists that we do not hold is in an operation:
//!      a release begun after the listing, waiting for that lock);
//!   3. `foreign_locks`, 4. the AWE table, 5. the AWE page store, 6. the fault table's write
//!      lock (then allocations a reserving call inserted but has not yet listed for the
//!      handler are listed, as that call would), 7. the userfaultfd, 8. the snapshot retire
//!      list (innermost: taken by every publish).
//!
//!   The guards go to a static slot: the same thread runs prepare and then parent or child.
//! * **parent** releases them (after waiting for the child to finish copying the AWE store, so
//!   nothing the parent does after `fork` returns shows in the child's frames).
//! * **child** resets what belonged to the parent's threads or to the parent's address space,
//!   then releases: the cached thread id of the forking thread, the snapshot reader counters
//!   (readers in other threads no longer exist), the `/proc/self/maps` descriptor of the
//!   signal handler, the userfaultfd (the parent's is dropped and the child opens its own:
//!   see below), and the AWE store (copied into a memfd of the child's own, window pages
//!   mapped again from it); and it unlists from the fault table the allocations that no
//!   longer own their pages (a release another thread was making: that thread's locks stay
//!   taken in the child, and the child's next `fork` would wait for them for ever).
//!
//! **Kernel write watch across `fork`.** The child's ranges are not registered on any
//! userfaultfd, and `fork` drops the write-protect bits of their page table entries, so every
//! page present in memory would read as written. So prepare, once every lock is held (nothing
//! can change), reads each live kernel-watched allocation's committed pages with
//! `PAGEMAP_SCAN` — without reset: the parent's record and descriptor stay as they are — and
//! keeps the pages *not* written (metadata heap, before its locks are taken). The child
//! registers each such allocation on a userfaultfd of its own and write-protects exactly
//! those pages: its first GetWriteWatch reports exactly what the parent had written since
//! its last reset, plus what the child writes. Every failure falls back to over-reporting
//! (`watch::UffdGuard::child_restore`): an allocation not registered in the child is taken
//! over by its first GetWriteWatch/ResetWriteWatch, and then reports every present page as
//! written until the first reset.
//!
//! Only [`Space::native`] is covered: other `Space` values (tests, tools) are not registered.
//! A call in flight on another thread that holds no lock at the moment of `fork` (between
//! mapping a new reservation and listing it, for instance) leaves its half in the child as
//! memory virtmem does not manage; that thread's caller does not exist in the child.

use super::handles::Slots;
use super::section::Section;
use crate::os::linux::names::ObjectName;
use super::allocation::{self, OpGuard};
use super::awe::Awe;
use super::rangeset::RangeSet;
use super::{Allocation, Space, WatchKind};
use crate::engine::{fault, snapshot};
use crate::os::linux::{physical, watch, LinuxOs};
use crate::os::Os;
use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;
use std::os::fd::OwnedFd;
use crate::os::linux::metaheap::{self, Meta, MetaArc as Arc, MetaVec};
use std::sync::{MutexGuard, Once};

/// One allocation's operation guard, with the allocation kept alive.
struct HeldOp {
    /// Borrows from `_alloc`'s heap value (see [`hold`]); dropped first.
    guard: ManuallyDrop<OpGuard<'static>>,
    _alloc: Arc<Allocation>,
}

impl Drop for HeldOp {
    fn drop(&mut self) {
        // SAFETY: dropped exactly once, here, while `_alloc` (dropped after this body) still
        // keeps the allocation the guard borrows alive.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
    }
}

/// Takes `a`'s operation guard (`try_only`: without waiting); `None` if released (or busy).
fn hold(a: Arc<Allocation>, try_only: bool) -> Option<HeldOp> {
    let g = if try_only { a.try_begin()? } else { a.begin()? };
    // SAFETY: the guard borrows the `Allocation` inside the `Arc`, whose heap address is
    // stable; `HeldOp` keeps that `Arc` and drops the guard before it.
    let g = unsafe { std::mem::transmute::<OpGuard<'_>, OpGuard<'static>>(g) };
    Some(HeldOp {
        guard: ManuallyDrop::new(g),
        _alloc: a,
    })
}

/// The metadata heap's class locks, released when dropped.
struct MetaHeapHeld;

impl Drop for MetaHeapHeld {
    fn drop(&mut self) {
        metaheap::unlock_all();
    }
}

/// Everything prepare took. Fields drop in declaration order: innermost lock first.
struct Held {
    /// The metadata heap's locks (innermost, taken last: once this function's own temporary
    /// vectors are freed; released first).
    _meta: Option<MetaHeapHeld>,
    /// The kernel-watched allocations' write-watch state, for the child (metadata heap: freed
    /// after `_meta` released its locks).
    carried: MetaVec<watch::Carried>,
    _retired: snapshot::RetireGuard,
    /// Section names and handles (leaf locks: their holders take no other lock).
    _files: crate::os::linux::files::ShareTableGuard,
    _handles: MutexGuard<'static, Slots>,
    _names: (
        MutexGuard<'static, ()>,
        MutexGuard<'static, std::collections::HashMap<ObjectName, std::sync::Arc<Section>>>,
    ),
    uffd: watch::UffdGuard,
    _table: MutexGuard<'static, ()>,
    store: MutexGuard<'static, Option<physical::StoreFile>>,
    awe: MutexGuard<'static, Awe>,
    _foreign: MutexGuard<'static, RangeSet>,
    index: super::directory::DirWrite<'static>,
    _ops: MetaVec<HeldOp>,
    /// With AWE pages: the child closes its write end when its store is private; the parent
    /// waits for that (EOF) before it lets anything change.
    pipe: Option<(OwnedFd, OwnedFd)>,
}

struct Slot(UnsafeCell<Option<Held>>);
// SAFETY: only the thread that holds every lock of `Held` touches the slot: prepare writes it
// after taking them all, and parent/child (the same thread, or its continuation in the child)
// take it out before releasing them. Another forking thread waits in prepare meanwhile.
unsafe impl Sync for Slot {}
static SLOT: Slot = Slot(UnsafeCell::new(None));

static REGISTERED: Once = Once::new();

/// Registers the handlers (once per process).
pub(super) fn register() {
    REGISTERED.call_once(|| {
        // SAFETY: the three handlers are `extern "C" fn()` that live for the program's
        // lifetime.
        let r = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        debug_assert_eq!(r, 0, "pthread_atfork");
    });
}

/// errno of the calling thread: kept across the handlers.
fn errno() -> i32 {
    // SAFETY: the thread's errno location is always valid.
    unsafe { *libc::__errno_location() }
}

fn set_errno(e: i32) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e };
}

extern "C" fn prepare() {
    let e = errno();
    // Waits if another thread is still creating the native space (the handlers were
    // registered from inside its initialization).
    let space = Space::native();
    // A lazily computed fact left half-initialized by another thread would block the child
    // forever: settle it now (a one-time probe).
    let _ = space.os.watch_supported();
    // Heaps (issue 16): heap locks are taken before any engine lock (heap operations call
    // the engine while holding them); released last in parent and child.
    if let Some(heaps) = super::heap::native_if_any() {
        heaps.fork_prepare();
    }
    let mut held = lock_all(space);
    // Nothing can change now: read the kernel-watched allocations' written pages for the
    // child (from the metadata heap, before its locks are taken).
    held.carried = carry_watch(space, &held._ops);
    metaheap::lock_all();
    held._meta = Some(MetaHeapHeld);
    // SAFETY: we hold every lock (see `Slot`).
    unsafe { *SLOT.0.get() = Some(held) };
    set_errno(e);
}

/// The write-watch state of every live kernel-watched allocation among `ops` (all held), for
/// the child to rebuild (`watch::UffdGuard::child_restore`). Reads only: the parent's written
/// bits and its userfaultfd are untouched. An allocation whose scan fails is left out (the
/// child then reports its present pages as written until reset).
fn carry_watch(space: &Space<LinuxOs>, ops: &[HeldOp]) -> MetaVec<watch::Carried> {
    let mut out: MetaVec<watch::Carried> = MetaVec::new_in(Meta);
    if !space.os.watch_supported() {
        return out;
    }
    let p = space.page();
    let mut spans: MetaVec<(usize, usize)> = MetaVec::new_in(Meta);
    for h in ops {
        let a = &h._alloc;
        if a.watch != Some(WatchKind::Kernel) || !a.is_live() {
            continue;
        }
        // Only committed pages can have been written (and only they are write-protected).
        spans.clear();
        a.read(|t| {
            for r in t.runs().filter(|r| r.state.committed) {
                let (s, e) = (a.base + r.start * p, a.base + r.end * p);
                match spans.last_mut() {
                    Some(last) if last.1 == s => last.1 = e,
                    _ => spans.push((s, e)),
                }
            }
        });
        if let Some(c) = watch::carry(a.base, a.size, &spans) {
            out.push(c);
        }
    }
    out
}

/// The allocations of `ops`, sorted (for `binary_search`).
fn held_pointers(ops: &[HeldOp]) -> MetaVec<*const Allocation> {
    let mut out: MetaVec<*const Allocation> = MetaVec::new_in(Meta);
    out.extend(ops.iter().map(|h| Arc::as_ptr(&h._alloc)));
    out.sort_unstable();
    out
}

/// Takes every lock, in the order of the module documentation.
fn lock_all(space: &'static Space<LinuxOs>) -> Held {
    loop {
        // Nothing here uses the process heap: a `malloc` built on virtmem may be the one that
        // forks, or be called by another atfork handler.
        let mut listed: MetaVec<Arc<Allocation>> = MetaVec::new_in(Meta);
        listed.extend(
            space
                .index
                .read()
                .from(0)
                .map(|(_, a)| a.clone()),
        );
        // Allocations the fault table still lists after they left the index are being
        // released: wait for that call too (else its handler lock stays taken in the child).
        let mut known: MetaVec<*const Allocation> = MetaVec::new_in(Meta);
        known.extend(listed.iter().map(Arc::as_ptr));
        known.sort_unstable();
        for a in fault::listed() {
            if known.binary_search(&Arc::as_ptr(&a)).is_err() {
                listed.push(a);
            }
        }
        // Ascending by base: the order multi-allocation calls use.
        listed.sort_by_key(|a| a.base);
        let mut ops: MetaVec<HeldOp> = MetaVec::new_in(Meta);
        ops.extend(listed.into_iter().filter_map(|a| hold(a, false)));
        let index = space.index.write();
        // Take the allocations inserted meanwhile.
        let have = held_pointers(&ops);
        {
            let mut complete = true;
            for (_, a) in index.from(0) {
                if have.binary_search(&Arc::as_ptr(a)).is_ok() {
                    continue;
                }
                match hold(a.clone(), true) {
                    Some(h) => ops.push(h),
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
            if !complete {
                // Its holder may be waiting for the index: let go of everything, start over.
                drop(index);
                drop(ops);
                std::thread::yield_now();
                continue;
            }
        }
        let foreign = space
            .foreign_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let awe = space.awe.lock().unwrap_or_else(|e| e.into_inner());
        let store = space.os.phys_store().lock();
        let pipe = if store.is_some() {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ok()
        } else {
            None
        };
        let table = fault::fork_lock();
        // A release that began after the listing above has left the index but may still be
        // listed for the handler, waiting for the table's lock we now hold, its allocation's
        // locks taken: the child would inherit them taken (and its next `fork` wait for them
        // for ever). Let go of everything and start over: that release then finishes.
        let held_now = held_pointers(&ops);
        let releasing = fault::listed()
            .iter()
            .any(|a| held_now.binary_search(&Arc::as_ptr(a)).is_err() && a.in_operation());
        if releasing {
            drop((table, pipe, store, awe, foreign, index, ops));
            std::thread::yield_now();
            continue;
        }
        fault::fork_complete(&table, index.from(0).map(|(_, a)| a));
        let uffd = watch::fork_lock();
        let retired = snapshot::fork_lock();
        let names = space.section_names().hold();
        let handles = space.handles().hold();
        let files = crate::os::linux::files::fork_lock();
        return Held {
            _meta: None,
            carried: MetaVec::new_in(Meta),
            _retired: retired,
            _files: files,
            _handles: handles,
            _names: names,
            uffd,
            _table: table,
            store,
            awe,
            _foreign: foreign,
            index,
            _ops: ops,
            pipe,
        };
    }
}

extern "C" fn parent() {
    let e = errno();
    // SAFETY: we hold every lock (see `Slot`).
    let held = unsafe { (*SLOT.0.get()).take() };
    if let Some(mut held) = held {
        if let Some((r, w)) = held.pipe.take() {
            drop(w);
            // EOF once the child closed its end (done, or gone); at once if fork failed.
            let mut b = [0u8; 1];
            loop {
                match rustix::io::read(&r, &mut b) {
                    Err(rustix::io::Errno::INTR) => continue,
                    Ok(n) if n > 0 => continue,
                    _ => break,
                }
            }
        }
        drop(held);
    }
    if let Some(heaps) = super::heap::native_if_any() {
        heaps.fork_release();
    }
    set_errno(e);
}

extern "C" fn child() {
    let e = errno();
    // The only thread now: the metadata heap may be used again at once (the rest of the
    // reset allocates).
    metaheap::unlock_all();
    allocation::fork_child_reset_tid();
    snapshot::fork_child_reset();
    fault::fork_child_reopen_maps();
    // SAFETY: we hold every lock (see `Slot`).
    let held = unsafe { (*SLOT.0.get()).take() };
    if let Some(mut held) = held {
        held.uffd.child_reset();
        held.uffd.child_restore(&held.carried);
        let page = Space::native().page();
        let index = &held.index;
        let window_of = |addr: usize| index.floor(addr).map(|(b, _)| b);
        let mapped = held
            .awe
            .mapped_pages(window_of)
            .map(|(addr, idx, p)| (addr, idx, crate::os::linux::prot_flags(p)));
        physical::privatize(&mut held.store, page, mapped);
        // Closing our ends tells the parent the store is ours now.
        drop(held.pipe.take());
        drop(held);
    }
    fault::fork_child_prune();
    if let Some(heaps) = super::heap::native_if_any() {
        heaps.fork_release();
    }
    set_errno(e);
}
