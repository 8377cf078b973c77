//! Model checks (loom) of virtmem's two custom synchronization protocols. They are faithful
//! re-statements of the algorithms, step for step and with the same memory orderings, because
//! the real code (`src/snapshot.rs`, `src/engine/allocation.rs`) uses `static` atomics and
//! `std` locks that loom cannot instrument. Keep them in sync with the source when it changes.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release -p virtmem --test loom_protocols`
//! (optionally `LOOM_MAX_PREEMPTIONS=3`). Ordinary `cargo test` compiles this file to nothing.
//!
//! 1. **Snapshot epochs** (`snapshot.rs`): readers announce themselves in the counter of the
//!    current epoch's parity and re-check the epoch; writers swap the pointer, retire the old
//!    value tagged with the epoch, advance the epoch at most twice while the other parity's
//!    counter is zero, and free what was retired two epochs ago — outside the list lock.
//!    Checked: no reader ever reads a freed value (a freed value is overwritten through a
//!    `loom::cell::UnsafeCell`, so an overlapping read is a causality violation loom
//!    reports), nested readers (a signal handler interrupting a reader) are fine, two cells
//!    with concurrent writers share the retire list safely, freeing a value may retire
//!    another (re-entrant retire, no deadlock), and once every thread is done a last retire
//!    frees everything (no leak). Values may share subtrees through `Arc`s, as the versions
//!    of the fault handler's persistent tree do (`engine/fault_table.rs`): freeing a version
//!    frees only what no newer version shares, and no reader of any version sees a freed
//!    subtree.
//! 2. **Operation lock + handler spin lock** (`engine/allocation.rs`): an operation takes the
//!    allocation's mutex, then spins the handler lock from 0 to its thread id; the fault
//!    handler spins it from 0 to its thread id, or proceeds without it if its own thread
//!    already holds it (a fault inside our own operation). Checked: operations and handlers
//!    never overlap on the page state, a handler nested in its own thread's operation
//!    neither deadlocks nor releases the lock, no deadlock between two operations and a
//!    handler, and operations on two allocations taken in address order (VirtualLock) do not
//!    deadlock.

#![allow(unexpected_cfgs)]
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicUsize, Ordering::*};
use loom::sync::{Arc, Mutex};
use loom::thread;

// loom models `SeqCst` accesses as `AcqRel` (tokio-rs/loom#180: it allows the
// store-buffering outcome SeqCst forbids), but it implements `SeqCst` fences. Every `SeqCst`
// access of snapshot.rs is therefore modelled by its leading-fence mapping (a `SeqCst` fence,
// then the access with acquire/release semantics), which is sound for SeqCst in the C++20
// model (RC11, Lahav et al. 2017). Without this, loom reports a false use-after-free: the
// epoch scheme relies on the store-buffering guarantee (a reader announces itself, then
// re-reads the epoch; a writer advances the epoch, then reads the counters).
fn load(a: &AtomicUsize) -> usize {
    fence(SeqCst);
    a.load(Acquire)
}
fn store(a: &AtomicUsize, v: usize) {
    fence(SeqCst);
    a.store(v, Release)
}
fn add(a: &AtomicUsize, v: usize) {
    fence(SeqCst);
    a.fetch_add(v, AcqRel);
}
fn sub(a: &AtomicUsize, v: usize) {
    fence(SeqCst);
    a.fetch_sub(v, AcqRel);
}
fn load_ptr(a: &AtomicPtr<Node>) -> *mut Node {
    fence(SeqCst);
    a.load(Acquire)
}
fn swap_ptr(a: &AtomicPtr<Node>, v: *mut Node) -> *mut Node {
    fence(SeqCst);
    a.swap(v, AcqRel)
}

/// `loom::model` with at most 3 preemptions per execution unless `LOOM_MAX_PREEMPTIONS`
/// says otherwise (the bound loom's authors recommend; every bug class here needs fewer).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

// ------------------------------------------------------------------------------------------
// 1. Snapshot epochs
// ------------------------------------------------------------------------------------------

const POISON: u64 = 0xDEAD;

struct Node {
    value: UnsafeCell<u64>,
    /// A cell this value owns (dropping the value retires it: the re-entrant case).
    child: Option<*mut Node>,
    /// Subtrees this value may share with other versions (a persistent structure).
    shared: Vec<Arc<Leaf>>,
}

/// A subtree that versions share: poisoned when its last owner drops it.
struct Leaf {
    value: UnsafeCell<u64>,
    /// Counts leaves dropped.
    dropped: Arc<AtomicUsize>,
}

impl Drop for Leaf {
    fn drop(&mut self) {
        // SAFETY: the last owner; a concurrent read is the data race loom would report.
        self.value.with_mut(|v| unsafe { *v = POISON });
        self.dropped.fetch_add(1, Relaxed);
    }
}

struct Retired {
    ptr: *mut Node,
    epoch: usize,
}

struct Epochs {
    epoch: AtomicUsize,
    readers: [AtomicUsize; 2],
    retired: Mutex<Vec<Retired>>,
    freed: AtomicUsize,
}

// SAFETY: raw pointers in the retire list are owned by it (as in snapshot.rs).
unsafe impl Send for Epochs {}
unsafe impl Sync for Epochs {}

struct Cell {
    ptr: AtomicPtr<Node>,
}

fn node(v: u64, child: Option<*mut Node>) -> *mut Node {
    node_sharing(v, child, Vec::new())
}

fn node_sharing(v: u64, child: Option<*mut Node>, shared: Vec<Arc<Leaf>>) -> *mut Node {
    Box::into_raw(Box::new(Node {
        value: UnsafeCell::new(v),
        child,
        shared,
    }))
}

impl Epochs {
    fn new() -> Epochs {
        Epochs {
            epoch: AtomicUsize::new(0),
            readers: [AtomicUsize::new(0), AtomicUsize::new(0)],
            retired: Mutex::new(Vec::new()),
            freed: AtomicUsize::new(0),
        }
    }

    /// `SnapshotCell::read`.
    fn read<R>(&self, c: &Cell, f: impl FnOnce(&Node) -> R) -> R {
        let e = loop {
            let e = load(&self.epoch);
            add(&self.readers[e & 1], 1);
            if load(&self.epoch) == e {
                break e;
            }
            sub(&self.readers[e & 1], 1);
        };
        let p = load_ptr(&c.ptr);
        // SAFETY: the property under test.
        let r = f(unsafe { &*p });
        sub(&self.readers[e & 1], 1);
        r
    }

    /// `SnapshotCell::publish`.
    fn publish(&self, c: &Cell, v: *mut Node) {
        let old = swap_ptr(&c.ptr, v);
        self.retire(old);
    }

    /// `snapshot::retire`.
    fn retire(&self, old: *mut Node) {
        let ready: Vec<Retired> = {
            let mut list = self.retired.lock().unwrap();
            list.push(Retired {
                ptr: old,
                epoch: load(&self.epoch),
            });
            for _ in 0..2 {
                let e = load(&self.epoch);
                if load(&self.readers[(e + 1) & 1]) != 0 {
                    break;
                }
                store(&self.epoch, e + 1);
            }
            let now = load(&self.epoch);
            let (ready, keep) = list.drain(..).partition(|r| r.epoch + 2 <= now);
            *list = keep;
            ready
        };
        for r in ready {
            self.free(r.ptr);
        }
    }

    /// Dropping a snapshot: its memory is poisoned (a concurrent read is a data race loom
    /// reports) and freed; a cell it owned is retired in turn (outside the list lock).
    fn free(&self, p: *mut Node) {
        // SAFETY: retired two epochs ago; the property under test is that nobody reads it.
        let b = unsafe { Box::from_raw(p) };
        b.value.with_mut(|v| unsafe { *v = POISON });
        self.freed.fetch_add(1, Relaxed);
        if let Some(child) = b.child {
            self.retire(child);
        }
    }

    fn pending(&self) -> usize {
        self.retired.lock().unwrap().len()
    }
}

fn check(n: &Node) -> u64 {
    let v = n.value.with(|v| unsafe { *v });
    assert_ne!(v, POISON, "a reader saw a freed snapshot");
    v
}

/// Drains the list at the end (no reader left): everything retired gets freed.
fn drain(ep: &Epochs, cells: &[&Cell], created: usize) {
    for _ in 0..3 {
        for c in cells {
            ep.publish(c, node(0, None));
        }
    }
    // Every node but the ones now published was freed.
    assert_eq!(ep.pending(), 0, "retired snapshots never freed");
    assert_eq!(
        ep.freed.load(Relaxed),
        created + 3 * cells.len() - cells.len()
    );
    for c in cells {
        // SAFETY: no thread is left.
        drop(unsafe { Box::from_raw(c.ptr.load(Relaxed)) });
    }
}

#[test]
fn snapshot_readers_never_see_freed_values() {
    model(|| {
        let ep = Arc::new(Epochs::new());
        let c = Arc::new(Cell {
            ptr: AtomicPtr::new(node(1, None)),
        });
        let reader = {
            let (ep, c) = (ep.clone(), c.clone());
            thread::spawn(move || {
                let a = ep.read(&c, check);
                let b = ep.read(&c, check);
                assert!(b >= a, "snapshots went back in time");
            })
        };
        // The writer publishes twice: the first value can only be freed once the epoch has
        // advanced twice past it.
        ep.publish(&c, node(2, None));
        ep.publish(&c, node(3, None));
        reader.join().unwrap();
        drain(&ep, &[&c], 3);
    });
}

#[test]
fn snapshot_nested_readers_and_two_writers() {
    model(|| {
        let ep = Arc::new(Epochs::new());
        let c1 = Arc::new(Cell {
            ptr: AtomicPtr::new(node(10, None)),
        });
        let c2 = Arc::new(Cell {
            ptr: AtomicPtr::new(node(20, None)),
        });
        // A reader interrupted (a signal handler) by a nested read of the other cell.
        let reader = {
            let (ep, c1, c2) = (ep.clone(), c1.clone(), c2.clone());
            thread::spawn(move || {
                ep.read(&c1, |n| {
                    check(n);
                    ep.read(&c2, check);
                    check(n);
                });
            })
        };
        // Two writers of different cells (different allocations' operation locks).
        let w2 = {
            let (ep, c2) = (ep.clone(), c2.clone());
            thread::spawn(move || ep.publish(&c2, node(21, None)))
        };
        ep.publish(&c1, node(11, None));
        reader.join().unwrap();
        w2.join().unwrap();
        drain(&ep, &[&c1, &c2], 4);
    });
}

#[test]
fn snapshot_reentrant_retire() {
    model(|| {
        let ep = Arc::new(Epochs::new());
        // The fault handler's table: its value owns a cell (an allocation's runs); dropping
        // the old table retires that cell's snapshot from inside the free.
        let inner = node(5, None);
        let c = Arc::new(Cell {
            ptr: AtomicPtr::new(node(1, Some(inner))),
        });
        let reader = {
            let (ep, c) = (ep.clone(), c.clone());
            thread::spawn(move || {
                ep.read(&c, |n| {
                    check(n);
                    if let Some(ch) = n.child {
                        // SAFETY: reachable from a live snapshot.
                        check(unsafe { &*ch });
                    }
                });
            })
        };
        ep.publish(&c, node(2, None));
        ep.publish(&c, node(3, None));
        reader.join().unwrap();
        drain(&ep, &[&c], 4);
    });
}

#[test]
fn snapshot_versions_sharing_subtrees() {
    model(|| {
        let ep = Arc::new(Epochs::new());
        let dropped = Arc::new(AtomicUsize::new(0));
        let leaf = |v: u64| {
            Arc::new(Leaf {
                value: UnsafeCell::new(v),
                dropped: dropped.clone(),
            })
        };
        // Version 1 holds subtrees a and b; version 2 shares a and adds d; version 3 shares d
        // only. Whatever version the reader finds, all its subtrees are alive.
        let (a, b, d) = (leaf(10), leaf(20), leaf(30));
        let c = Arc::new(Cell {
            ptr: AtomicPtr::new(node_sharing(1, None, vec![a.clone(), b])),
        });
        let reader = {
            let (ep, c) = (ep.clone(), c.clone());
            thread::spawn(move || {
                ep.read(&c, |n| {
                    check(n);
                    for l in &n.shared {
                        // SAFETY: reachable from a live snapshot (the property under test).
                        let v = l.value.with(|v| unsafe { *v });
                        assert_ne!(v, POISON, "a reader saw a freed shared subtree");
                    }
                });
            })
        };
        ep.publish(&c, node_sharing(2, None, vec![a, d.clone()]));
        ep.publish(&c, node_sharing(3, None, vec![d]));
        reader.join().unwrap();
        drain(&ep, &[&c], 3);
        // Versions 1 and 2 are gone: a and b with them; d went with version 3 in the drain.
        assert_eq!(dropped.load(Relaxed), 3);
    });
}

// ------------------------------------------------------------------------------------------
// 2. Operation lock + handler spin lock
// ------------------------------------------------------------------------------------------

struct Alloc {
    op: Mutex<()>,
    busy: AtomicU32,
    /// The page state both sides change under the protocol (a race here is a bug).
    state: UnsafeCell<u32>,
}

impl Alloc {
    fn new() -> Alloc {
        Alloc {
            op: Mutex::new(()),
            busy: AtomicU32::new(0),
            state: UnsafeCell::new(0),
        }
    }

    /// `Allocation::begin` + the operation + `OpGuard::drop`; `inner` runs with both held.
    fn operation(&self, tid: u32, inner: impl FnOnce()) {
        let op = self.op.lock().unwrap();
        while self
            .busy
            .compare_exchange_weak(0, tid, Acquire, Relaxed)
            .is_err()
        {
            thread::yield_now();
        }
        self.state.with_mut(|s| unsafe { *s += 1 });
        inner();
        self.state.with_mut(|s| unsafe { *s += 1 });
        self.busy.store(0, Release);
        drop(op);
    }

    /// `Allocation::handler_lock` / `handler_unlock` around the handler's work.
    fn handler(&self, tid: u32) {
        let locked = loop {
            match self.busy.compare_exchange_weak(0, tid, Acquire, Relaxed) {
                Ok(_) => break true,
                Err(h) if h == tid => break false,
                Err(_) => thread::yield_now(),
            }
        };
        if locked {
            self.state.with_mut(|s| unsafe { *s += 10 });
            self.busy.store(0, Release);
        } else {
            // Nested in our own operation: the operation's hold covers us; we must not
            // release (the operation still runs).
            assert_eq!(self.busy.load(Relaxed), tid);
            self.state.with_mut(|s| unsafe { *s += 10 });
            assert_eq!(
                self.busy.load(Relaxed),
                tid,
                "the nested handler released the lock"
            );
        }
    }
}

#[test]
fn handler_lock_excludes_operations_and_handlers() {
    model(|| {
        let a = Arc::new(Alloc::new());
        let t1 = {
            let a = a.clone();
            // An operation during which its own thread faults on the allocation.
            thread::spawn(move || a.operation(1, || a.handler(1)))
        };
        let t2 = {
            let a = a.clone();
            // Another thread faulting on the allocation (signal handler).
            thread::spawn(move || a.handler(2))
        };
        // A third thread running an operation.
        a.operation(3, || {});
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(a.state.with(|s| unsafe { *s }), 2 + 10 + 10 + 2);
        assert_eq!(a.busy.load(Relaxed), 0);
    });
}

#[test]
fn operations_on_two_allocations_in_address_order() {
    model(|| {
        let x = Arc::new(Alloc::new());
        let y = Arc::new(Alloc::new());
        // VirtualLock over both (locks in address order: x then y) against a handler on y
        // and an operation on y alone.
        let t1 = {
            let (x, y) = (x.clone(), y.clone());
            thread::spawn(move || x.operation(1, || y.operation(1, || {})))
        };
        let t2 = {
            let y = y.clone();
            thread::spawn(move || y.handler(2))
        };
        y.operation(3, || {});
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(x.state.with(|s| unsafe { *s }), 2);
        assert_eq!(y.state.with(|s| unsafe { *s }), 2 + 10 + 2);
    });
}
