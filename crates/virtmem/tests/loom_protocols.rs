//! Model checks (loom) of virtmem's custom synchronization protocols. They are faithful
//! re-statements of the algorithms, step for step and with the same memory orderings, because
//! the real code (`src/engine/snapshot.rs`, `runs_cell.rs`, `directory.rs` + `radix.rs`,
//! `allocation.rs`) uses `static` atomics and `std` locks that loom cannot instrument. Keep
//! them in sync with the source when it changes.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release -p virtmem --test loom_protocols`
//! (at most 3 preemptions per execution unless `LOOM_MAX_PREEMPTIONS` says otherwise; about
//! 15 s on two cores). Ordinary `cargo test` compiles this file to nothing.
//!
//! **SeqCst.** loom models `SeqCst` accesses as `AcqRel` (tokio-rs/loom#180: it allows the
//! store-buffering outcome SeqCst forbids, on which the epoch scheme relies: a reader
//! announces itself, then re-reads the epoch; a writer advances the epoch, then reads the
//! counters), but it implements `SeqCst` fences. So every `SeqCst` access of the epoch
//! protocols is modelled by a fence next to an acquire/release access ([`Sc`]), and every
//! such model runs twice: with the fence *before* the access (the leading-fence mapping) and
//! *after* it (the trailing-fence mapping). Neither is exactly `SeqCst`: the fence also
//! orders the thread's non-`SeqCst` accesses on its side of the access (the leading fence
//! puts an earlier `Release` store before the access, the trailing one a later `Acquire`
//! load after it; a real `SeqCst` access orders them only as acquire/release would), so each
//! mapping hides reorderings the other may show. Reorderings on both sides of one access,
//! or past several `SeqCst` accesses (a reader's pin acts as a fence before the loads that
//! follow it under both mappings), escape both.
//!
//! 1. **Snapshot epochs** (`snapshot.rs`): readers pin themselves in the counter of the
//!    current epoch's parity and re-check the epoch; writers swap the pointer and retire the
//!    old value tagged with the epoch; retiring advances the epoch lock-free (at most twice,
//!    each step a compare-exchange from the epoch just read, taken only while the other
//!    parity's counter is zero) and frees what was retired two epochs ago — outside the list
//!    lock. Checked: no reader ever reads a freed value (a freed value is overwritten through
//!    a `loom::cell::UnsafeCell`, so an overlapping read is a causality violation loom
//!    reports), nested readers (a signal handler interrupting a reader) are fine, two cells
//!    with concurrent writers share the retire list safely, one of them first advancing the
//!    epoch outside the list lock (as `RunsCell`'s spare check does: its compare-exchanges
//!    race with the other writer's), freeing a value may retire another (re-entrant retire, no
//!    deadlock), and once every thread is done a last retire frees everything (no leak).
//!    Values may share subtrees through `Arc`s, as the versions of the fault handler's
//!    persistent tree do (`engine/fault_table.rs`): freeing a version frees only what no
//!    newer version shares, and no reader of any version sees a freed subtree.
//!    Mutation checks: retiring after one epoch instead of two is caught; advancing with a
//!    plain store instead of the compare-exchange is caught by model 3 (the epoch goes back:
//!    retired values are never freed).
//! 2. **Page-run cells** (`runs_cell.rs`): one word holding either a packed one-run table
//!    (bit 0 set: read without pinning) or a block pointer (read pinned, after reloading the
//!    word). One writer per cell; a multi-run table reuses the cell's spare block (the last
//!    block it unpublished) when no reader is pinned (`quiescent`) or the spare's epoch is
//!    two behind (`reclaimable(spare_epoch, try_advance())`), overwriting it in place, else
//!    allocates; a packed word is replaced by a `Release` store, a block by a `SeqCst` swap
//!    that stashes it as the spare (the previous spare is retired). Checked, with a writer
//!    going packed → block → packed → block (reusing the spare if allowed) → packed and two
//!    readers reading twice each:
//!    no block is overwritten or freed while a reader reads it (loom reports the overlap),
//!    every value read is one that was published, packed or whole, never older than one read
//!    before, and nothing leaks (every block allocated is freed once the cell is dropped).
//!    Mutation checks: reusing the spare without the quiescence/epoch check, reusing it one
//!    epoch after it was stashed, and reading the block without reloading the word once
//!    pinned are caught.
//! 3. **Directory lookups** (`directory.rs`, `radix.rs`): a reader pins, loads a radix slot
//!    (`SeqCst`) and dereferences the allocation it names; the writer replaces it (a slot
//!    `Release` store) and retires the old allocation, then removes the new one the same
//!    way, while another thread advances the epoch lock-free. Checked under both mappings: no
//!    reader dereferences a freed allocation, and it sees each one whole. Mutation check:
//!    without the `SeqCst` fence at the start of `retire_raw`, the trailing-fence run finds a
//!    use-after-free (the C++20 model allows it too): the slot store is `Release`, so nothing
//!    orders it before the epoch tag or the reader-counter loads, and an epoch step taken
//!    meanwhile by another thread (lock-free, outside the retire list's lock) lets a reader
//!    pin in the next epoch and still load the old slot value. This model found that hole
//!    when the advance became lock-free; `directory_lookup_trailing_fences` pins the fix.
//! 4. **Operation lock + handler spin lock** (`engine/allocation.rs`): an operation takes the
//!    allocation's mutex, then spins the handler lock from 0 to its thread id; the fault
//!    handler spins it from 0 to its thread id, or proceeds without it if its own thread
//!    already holds it (a fault inside our own operation). Checked: operations and handlers
//!    never overlap on the page state, a handler nested in its own thread's operation
//!    neither deadlocks nor releases the lock, no deadlock between two operations and a
//!    handler, and operations on two allocations taken in address order (VirtualLock) do not
//!    deadlock. A quick operation (VirtualProtect's fast path: the handler lock alone, one
//!    attempt, else the general operation) never overlaps an operation or a handler either.

#![allow(unexpected_cfgs)]
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicUsize, Ordering::*};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// Where the `SeqCst` fence goes that models a `SeqCst` access (see the header).
#[derive(Clone, Copy, Debug)]
enum Sc {
    /// Before the access (`fence(SeqCst)`, then an acquire load / release store / AcqRel RMW).
    Leading,
    /// After it.
    Trailing,
}

impl Sc {
    /// `access`, done with acquire/release semantics, as a `SeqCst` access.
    fn around<R>(self, access: impl FnOnce() -> R) -> R {
        if let Sc::Leading = self {
            fence(SeqCst);
        }
        let r = access();
        if let Sc::Trailing = self {
            fence(SeqCst);
        }
        r
    }
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

/// [`model`] under both mappings of `SeqCst` accesses.
fn model_sc(f: impl Fn(Sc) + Sync + Send + Copy + 'static) {
    model(move || f(Sc::Leading));
    model(move || f(Sc::Trailing));
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

/// `snapshot::Retired`: something unpublished, and how to free it.
struct Retired {
    ptr: *mut (),
    free: fn(&Epochs, *mut ()),
    epoch: usize,
}

/// The epoch scheme's globals (`EPOCH`, `READERS`, `RETIRED`), plus bookkeeping.
struct Epochs {
    sc: Sc,
    epoch: AtomicUsize,
    readers: [AtomicUsize; 2],
    retired: Mutex<Vec<Retired>>,
    /// `snapshot::PENDING`: how many wait in `retired`.
    pending: AtomicUsize,
    /// Snapshots freed.
    freed: AtomicUsize,
    /// Blocks (sections 2 and 3) freed: poisoned, and kept here until the model ends so that
    /// a buggy reader's late read stays a read of poison, not of freed memory.
    graveyard: std::sync::Mutex<Vec<*mut Block>>,
}

// SAFETY: raw pointers in the retire list are owned by it (as in snapshot.rs).
unsafe impl Send for Epochs {}
unsafe impl Sync for Epochs {}

impl Drop for Epochs {
    fn drop(&mut self) {
        for p in self.graveyard.get_mut().unwrap().drain(..) {
            // SAFETY: freed blocks, kept only for this.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

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

/// `snapshot::reclaimable`.
fn reclaimable(retired: usize, now: usize) -> bool {
    retired + 2 <= now
}

impl Epochs {
    fn new(sc: Sc) -> Epochs {
        Epochs {
            sc,
            epoch: AtomicUsize::new(0),
            readers: [AtomicUsize::new(0), AtomicUsize::new(0)],
            retired: Mutex::new(Vec::new()),
            pending: AtomicUsize::new(0),
            freed: AtomicUsize::new(0),
            graveyard: std::sync::Mutex::new(Vec::new()),
        }
    }

    // The `SeqCst` accesses of snapshot.rs, mapped as the header says.
    fn load(&self, a: &AtomicUsize) -> usize {
        self.sc.around(|| a.load(Acquire))
    }
    fn add(&self, a: &AtomicUsize, v: usize) {
        self.sc.around(|| a.fetch_add(v, AcqRel));
    }
    fn sub(&self, a: &AtomicUsize, v: usize) {
        self.sc.around(|| a.fetch_sub(v, AcqRel));
    }
    fn cas(&self, a: &AtomicUsize, current: usize, new: usize) -> bool {
        self.sc
            .around(|| a.compare_exchange(current, new, AcqRel, Acquire))
            .is_ok()
    }
    fn store(&self, a: &AtomicUsize, v: usize) {
        self.sc.around(|| a.store(v, Release))
    }
    fn swap(&self, a: &AtomicUsize, v: usize) -> usize {
        self.sc.around(|| a.swap(v, AcqRel))
    }
    fn load_ptr(&self, a: &AtomicPtr<Node>) -> *mut Node {
        self.sc.around(|| a.load(Acquire))
    }
    fn swap_ptr(&self, a: &AtomicPtr<Node>, v: *mut Node) -> *mut Node {
        self.sc.around(|| a.swap(v, AcqRel))
    }

    /// `snapshot::pin`: the epoch pinned in.
    fn pin(&self) -> usize {
        loop {
            let e = self.load(&self.epoch);
            self.add(&self.readers[e & 1], 1);
            if self.load(&self.epoch) == e {
                return e;
            }
            self.sub(&self.readers[e & 1], 1);
        }
    }

    /// `Pin::drop`.
    fn unpin(&self, e: usize) {
        self.sub(&self.readers[e & 1], 1);
    }

    /// `snapshot::epoch_now`.
    fn epoch_now(&self) -> usize {
        self.load(&self.epoch)
    }

    /// `snapshot::try_advance`: lock-free.
    fn try_advance(&self) -> usize {
        for _ in 0..2 {
            let e = self.load(&self.epoch);
            if self.load(&self.readers[(e + 1) & 1]) != 0 {
                break;
            }
            let _ = self.cas(&self.epoch, e, e + 1);
        }
        self.load(&self.epoch)
    }

    /// `snapshot::quiescent`.
    fn quiescent(&self) -> bool {
        self.load(&self.readers[0]) == 0 && self.load(&self.readers[1]) == 0
    }

    /// `SnapshotCell::read`.
    fn read<R>(&self, c: &Cell, f: impl FnOnce(&Node) -> R) -> R {
        let e = self.pin();
        let p = self.load_ptr(&c.ptr);
        // SAFETY: the property under test.
        let r = f(unsafe { &*p });
        self.unpin(e);
        r
    }

    /// `SnapshotCell::publish`.
    fn publish(&self, c: &Cell, v: *mut Node) {
        let old = self.swap_ptr(&c.ptr, v);
        self.retire(old.cast(), free_node);
    }

    /// `snapshot::retire_raw`: a `SeqCst` fence after the caller's unpublishing store; freed
    /// at once if no reader is pinned and nothing waits; else tagged with the epoch, the
    /// advance inside the list lock, the frees outside.
    fn retire(&self, ptr: *mut (), free: fn(&Epochs, *mut ())) {
        fence(SeqCst);
        if self.quiescent() && self.load(&self.pending) == 0 {
            free(self, ptr);
            return;
        }
        let ready: Vec<Retired> = {
            let mut list = self.retired.lock().unwrap();
            list.push(Retired {
                ptr,
                free,
                epoch: self.load(&self.epoch),
            });
            let now = self.try_advance();
            let (ready, keep): (Vec<Retired>, Vec<Retired>) =
                list.drain(..).partition(|r| reclaimable(r.epoch, now));
            *list = keep;
            self.store(&self.pending, list.len());
            ready
        };
        for r in ready {
            (r.free)(self, r.ptr);
        }
    }

    fn pending(&self) -> usize {
        self.retired.lock().unwrap().len()
    }
}

/// Dropping a snapshot: its memory is poisoned (a concurrent read is a data race loom
/// reports) and freed; a cell it owned is retired in turn (outside the list lock).
fn free_node(ep: &Epochs, p: *mut ()) {
    // SAFETY: retired two epochs ago; the property under test is that nobody reads it.
    let b = unsafe { Box::from_raw(p.cast::<Node>()) };
    b.value.with_mut(|v| unsafe { *v = POISON });
    ep.freed.fetch_add(1, Relaxed);
    if let Some(child) = b.child {
        ep.retire(child.cast(), free_node);
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
    model_sc(|sc| {
        let ep = Arc::new(Epochs::new(sc));
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
    model_sc(|sc| {
        let ep = Arc::new(Epochs::new(sc));
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
        // Two writers of different cells (different allocations' operation locks); the
        // second first advances the epoch outside the list lock (its `RunsCell` checking its
        // spare): its compare-exchanges race with the first writer's.
        let w2 = {
            let (ep, c2) = (ep.clone(), c2.clone());
            thread::spawn(move || {
                ep.try_advance();
                ep.publish(&c2, node(21, None));
            })
        };
        ep.publish(&c1, node(11, None));
        reader.join().unwrap();
        w2.join().unwrap();
        drain(&ep, &[&c1, &c2], 4);
    });
}

#[test]
fn snapshot_reentrant_retire() {
    model_sc(|sc| {
        let ep = Arc::new(Epochs::new(sc));
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
    model_sc(|sc| {
        let ep = Arc::new(Epochs::new(sc));
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
// 2. Page-run cells
// ------------------------------------------------------------------------------------------

/// A heap block read by pinned readers: a multi-run table (section 2) or an allocation
/// (section 3). Its content is the id of the value it holds.
struct Block {
    value: UnsafeCell<u64>,
}

fn block(v: u64) -> *mut Block {
    Box::into_raw(Box::new(Block {
        value: UnsafeCell::new(v),
    }))
}

/// Frees a retired block: poisons it (a concurrent read is a race loom reports) and keeps its
/// memory until the model ends.
fn free_block(ep: &Epochs, p: *mut ()) {
    let p = p.cast::<Block>();
    // SAFETY: retired two epochs ago; the property under test is that nobody reads it.
    unsafe { &*p }.value.with_mut(|v| unsafe { *v = POISON });
    ep.graveyard.lock().unwrap().push(p);
}

/// Reads a block a reader reached while pinned.
fn read_block(p: *const Block) -> u64 {
    // SAFETY: the property under test: the block is neither freed nor being overwritten.
    let v = unsafe { &*p }.value.with(|v| unsafe { *v });
    assert_ne!(v, POISON, "a reader saw a freed block");
    v
}

/// Bit 0 of the word: a packed one-run table.
const PACKED: usize = 1;

/// A table to publish: one run (packed into the word) or several (a block), named by an id.
#[derive(Clone, Copy)]
enum Table {
    One(u64),
    Several(u64),
}

/// `RunsCell`: `word` holds `id << 1 | PACKED` or a block pointer.
struct Runs {
    word: AtomicUsize,
    spare: AtomicPtr<Block>,
    spare_epoch: AtomicUsize,
    /// Blocks allocated (bookkeeping, the writer's alone: `std` atomics, invisible to loom).
    allocated: std::sync::atomic::AtomicUsize,
    /// Spares reused.
    reused: std::sync::atomic::AtomicUsize,
}

impl Runs {
    fn new(t: Table) -> Runs {
        let r = Runs {
            word: AtomicUsize::new(PACKED),
            spare: AtomicPtr::new(std::ptr::null_mut()),
            spare_epoch: AtomicUsize::new(0),
            allocated: Default::default(),
            reused: Default::default(),
        };
        r.word.store(r.word_for(t, None), Relaxed);
        r
    }

    /// `RunsCell::word_for`: a reused spare is overwritten in place.
    fn word_for(&self, t: Table, reuse: Option<*mut Block>) -> usize {
        match t {
            Table::One(v) => (v as usize) << 1 | PACKED,
            Table::Several(v) => match reuse {
                Some(p) => {
                    // SAFETY: the property under test: no reader can see the spare any more.
                    unsafe { &*p }.value.with_mut(|x| unsafe { *x = v });
                    self.reused.fetch_add(1, Relaxed);
                    p as usize
                }
                None => {
                    self.allocated.fetch_add(1, Relaxed);
                    block(v) as usize
                }
            },
        }
    }

    /// `RunsCell::read`: the id of the table read.
    fn read(&self, ep: &Epochs) -> u64 {
        let w = ep.load(&self.word);
        if w & PACKED != 0 {
            return (w >> 1) as u64;
        }
        let e = ep.pin();
        let w = ep.load(&self.word);
        let v = if w & PACKED != 0 {
            (w >> 1) as u64
        } else {
            read_block(w as *const Block)
        };
        ep.unpin(e);
        v
    }

    /// `RunsCell::publish` (one writer per cell).
    fn publish(&self, ep: &Epochs, t: Table) {
        let reuse = match t {
            Table::Several(_) => self.take_spare(ep),
            Table::One(_) => None,
        };
        let new = self.word_for(t, reuse);
        let old = self.word.load(Relaxed);
        if old & PACKED != 0 {
            self.word.store(new, Release);
        } else {
            ep.swap(&self.word, new);
            self.stash(ep, old as *mut Block);
        }
    }

    /// `RunsCell::take_spare`.
    fn take_spare(&self, ep: &Epochs) -> Option<*mut Block> {
        let p = self.spare.load(Relaxed);
        if p.is_null() {
            return None;
        }
        if !ep.quiescent() && !reclaimable(self.spare_epoch.load(Relaxed), ep.try_advance()) {
            return None;
        }
        self.spare.store(std::ptr::null_mut(), Relaxed);
        Some(p)
    }

    /// `RunsCell::stash`.
    fn stash(&self, ep: &Epochs, old: *mut Block) {
        let prev = self.spare.load(Relaxed);
        self.spare_epoch.store(ep.epoch_now(), Relaxed);
        self.spare.store(old, Relaxed);
        if !prev.is_null() {
            ep.retire(prev.cast(), free_block);
        }
    }

    /// `RunsCell::drop`: the current block and the spare are retired.
    fn drop_in(&self, ep: &Epochs) {
        let w = self.word.load(Relaxed);
        if w & PACKED == 0 {
            ep.retire(w as *mut (), free_block);
        }
        let s = self.spare.load(Relaxed);
        if !s.is_null() {
            ep.retire(s.cast(), free_block);
        }
    }
}

#[test]
fn runs_cell_readers_never_see_a_reused_or_freed_block() {
    // Ids: even = one run (packed), odd = several runs (a block); published in this order.
    const SEQUENCE: [Table; 4] = [
        Table::Several(1),
        Table::One(2),
        Table::Several(3),
        Table::One(4),
    ];
    model_sc(|sc| {
        let ep = Arc::new(Epochs::new(sc));
        let c = Arc::new(Runs::new(Table::One(0)));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (ep, c) = (ep.clone(), c.clone());
                thread::spawn(move || {
                    let mut last = 0;
                    for _ in 0..2 {
                        let v = c.read(&ep);
                        assert!(v <= 4, "a value never published: {v}");
                        assert!(v >= last, "a table older than one read before");
                        last = v;
                    }
                })
            })
            .collect();
        // Block 1 is allocated, then unpublished (the spare); table 3 reuses it if no reader
        // can see it any more, else allocates; table 4 stashes table 3's block.
        for t in SEQUENCE {
            c.publish(&ep, t);
        }
        for r in readers {
            r.join().unwrap();
        }
        // Alone now: the spare is reused at once.
        let reused = c.reused.load(Relaxed);
        c.publish(&ep, Table::Several(5));
        assert_eq!(
            c.reused.load(Relaxed),
            reused + 1,
            "a quiescent spare not reused"
        );
        assert_eq!(c.read(&ep), 5);
        c.drop_in(&ep);
        assert_eq!(ep.pending(), 0, "retired blocks never freed");
        assert_eq!(
            ep.graveyard.lock().unwrap().len(),
            c.allocated.load(Relaxed),
            "blocks leaked"
        );
    });
}

// ------------------------------------------------------------------------------------------
// 3. Directory lookups
// ------------------------------------------------------------------------------------------

/// One radix slot naming allocation 1; a writer replaces it by allocation 2 (a placeholder
/// split, `DirWrite::replace`) and then removes that (`DirWrite::remove`), retiring each
/// after its slot store; a reader looks the slot up; another thread advances the epoch
/// lock-free (a `RunsCell` of another allocation checking its spare).
fn directory_model(sc: Sc) {
    let ep = Arc::new(Epochs::new(sc));
    let slot = Arc::new(AtomicUsize::new(block(1) as usize));
    let reader = {
        let (ep, slot) = (ep.clone(), slot.clone());
        thread::spawn(move || {
            // `Directory::lookup` under a pin; a found allocation is read whole.
            let e = ep.pin();
            // `Radix::lookup` loads slots `SeqCst`.
            let p = ep.sc.around(|| slot.load(Acquire));
            if p != 0 {
                let v = read_block(p as *const Block);
                assert!(v == 1 || v == 2, "a torn allocation: {v}");
            }
            ep.unpin(e);
        })
    };
    let advancer = {
        let ep = ep.clone();
        thread::spawn(move || {
            ep.try_advance();
        })
    };
    // The writer (holding the index's write lock): `Radix::set_whole` is a load and a
    // `Release` store, then the old allocation's B-tree reference is retired.
    for new in [block(2) as usize, 0] {
        let old = slot.load(Acquire);
        slot.store(new, Release);
        ep.retire(old as *mut (), free_block);
    }
    reader.join().unwrap();
    advancer.join().unwrap();
    ep.retire(block(0).cast(), free_block);
    assert_eq!(ep.pending(), 0, "retired allocations never freed");
    assert_eq!(ep.graveyard.lock().unwrap().len(), 3);
}

#[test]
fn directory_lookup_never_sees_a_freed_allocation() {
    model(|| directory_model(Sc::Leading));
}

/// The directory model under the trailing-fence mapping. Without the fence at the start of
/// `retire_raw` it finds this use-after-free (allowed by the C++20 model, hidden by the
/// leading-fence mapping):
///
/// 1. writer W: `slot.store(0, Release)` (removing allocation A); `retire_raw` tags A with
///    `EPOCH.load(SeqCst)` = 0;
/// 2. thread T (another cell's `take_spare` → `try_advance`, outside the list lock): EPOCH
///    0 → 1 (`READERS[1]` is 0);
/// 3. reader R: `pin` in epoch 1, loads the slot and still reads A: nothing orders W's
///    `Release` store before R's load (W's later `SeqCst` loads do not order an earlier
///    non-`SeqCst` store);
/// 4. W: `try_advance`: epoch 1, `READERS[0]` = 0, 1 → 2; 2 ≥ 0 + 2: A is freed while R
///    dereferences it.
///
/// With the fence (and `SeqCst` slot loads in `Radix::lookup`), W's store precedes, in the
/// single total order, either R's pin (then R's `SeqCst` load sees it) or W's counter loads
/// see R pinned. The same holds for radix nodes unlinked by `unlink_if_empty` / `set_whole`.
#[test]
fn directory_lookup_trailing_fences() {
    model(|| directory_model(Sc::Trailing));
}

// ------------------------------------------------------------------------------------------
// 4. Operation lock + handler spin lock
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

    /// `Allocation::begin_quick` (VirtualProtect's fast path): one attempt at the handler lock
    /// alone, no mutex; if anyone holds it, the general operation instead.
    fn quick(&self, tid: u32) {
        if self.busy.compare_exchange(0, tid, Acquire, Relaxed).is_ok() {
            self.state.with_mut(|s| unsafe { *s += 100 });
            self.state.with_mut(|s| unsafe { *s += 100 });
            self.busy.store(0, Release);
        } else {
            self.operation(tid, || {
                self.state.with_mut(|s| unsafe { *s += 198 });
            });
        }
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
fn quick_operations_exclude_operations_and_handlers() {
    // Against an operation during which its own thread faults.
    model(|| {
        let a = Arc::new(Alloc::new());
        let t1 = {
            let a = a.clone();
            thread::spawn(move || a.quick(1))
        };
        a.operation(3, || a.handler(3));
        t1.join().unwrap();
        assert_eq!(a.state.with(|s| unsafe { *s }), 200 + 2 + 10);
        assert_eq!(a.busy.load(Relaxed), 0);
    });
}

#[test]
fn quick_operations_exclude_handlers() {
    // Against a fault on another thread.
    model(|| {
        let a = Arc::new(Alloc::new());
        let t1 = {
            let a = a.clone();
            thread::spawn(move || a.quick(1))
        };
        a.handler(3);
        t1.join().unwrap();
        assert_eq!(a.state.with(|s| unsafe { *s }), 200 + 10);
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
