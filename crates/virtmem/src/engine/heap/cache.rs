//! Per-thread caches of front-end slots (the fast path of HeapAlloc/HeapFree): a thread keeps,
//! for up to [`WAYS`] heaps at a time, a small stack of free slots per size class. Alloc pops,
//! free pushes: no lock and no atomic read-modify-write. Refills and overflows move half a
//! stack at a time between the cache and the class's pages under the class spin lock
//! (`lfh.rs`).
//!
//! * Each way is tagged with its heap and that heap's generation. HeapDestroy changes the
//!   generation, so a way of a destroyed heap is dropped at its next use without touching
//!   the (released) memory; its slots were the heap's and are gone with it.
//! * A thread that exits gives its slots back (a `pthread_key_create` destructor, registered
//!   on the thread's first use; it allocates nothing). The cache memory comes from the
//!   metadata heap, never `malloc`; the thread-local itself is a constant with no destructor.
//! * After `fork` the child's only thread keeps its cache; slots cached by the parent's other
//!   threads stay unavailable in the child (they are neither live nor on a page's free list:
//!   a bounded leak of at most `WAYS · classes · K` slots per such thread).
//!
//! Only heaps on real memory use caches (`Heap::cached`).

use super::lfh::BATCH;
use super::Heap;
use crate::os::linux::metaheap::Meta;
use crate::rules::heap::LFH_CLASSES;
use allocator_api2::alloc::{Allocator, Layout};
use std::ptr::null;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

/// Heaps a thread caches at once (direct-mapped by the heap's slot number).
const WAYS: usize = 4;
/// Slots cached per class (31: with its count, one class fills four cache lines; refills and
/// overflows move 15 at a time. With 15, batches of 100 blocks of up to 64 bytes cost 1.18x
/// malloc, 0.91x with 31).
pub(crate) const K: usize = 31;

/// A cached slot: its block pointer.
pub(crate) type Item = usize;

/// One class's stack: its count beside its items, in four cache lines of their own. (With the
/// counts in one array after the items, a class's count and its items sat exactly 4 KiB apart
/// for some classes; the processor then takes the count's load for a reload of the item just
/// stored (4K aliasing) and waits: measured 7.4 → 12.5 ns per alloc + free for such a class.)
#[repr(C, align(128))]
struct Stack {
    n: usize,
    items: [Item; K],
}

struct Block {
    classes: [Stack; LFH_CLASSES],
}

#[derive(Clone, Copy)]
struct Way {
    heap: *const Heap,
    gen: u64,
    block: *mut Block,
}

/// A thread's heap state (`tls.rs` says where it lives). All zero is its initial value.
pub(crate) struct Tls {
    ways: [Way; WAYS],
    /// The process heap's way (never shared with another heap's; the process heap is never
    /// destroyed, so its generation never changes and the fast paths need not compare it).
    process: Way,
    registered: bool,
    /// The thread's last non-process heap found from a handle: `(Heaps address, handle, heap
    /// descriptor)` (`Heaps::lookup`).
    pub(crate) last_heap: (usize, usize, usize),
}

impl Tls {
    /// The initial value (all zero).
    #[allow(dead_code)]
    pub(crate) const EMPTY: Tls = Tls {
        ways: [Way {
            heap: null(),
            gen: 0,
            block: std::ptr::null_mut(),
        }; WAYS],
        process: Way {
            heap: null(),
            gen: 0,
            block: std::ptr::null_mut(),
        },
        registered: false,
        last_heap: (0, 0, 0),
    };
}

static KEY_ONCE: Once = Once::new();
static KEY: AtomicU32 = AtomicU32::new(u32::MAX);

unsafe extern "C" fn thread_exit(_: *mut libc::c_void) {
    let _ = tls().map(|t| {
        // SAFETY: this thread's own cache; no other reference to it is live (destructors run
        // outside any heap call of this thread).
        let t = unsafe { &mut *t };
        for w in t.ways.iter_mut().chain(std::iter::once(&mut t.process)) {
            flush(w);
            if !w.block.is_null() {
                // SAFETY: allocated in `claim` with this layout.
                unsafe {
                    Meta.deallocate(
                        std::ptr::NonNull::new_unchecked(w.block.cast()),
                        Layout::new::<Block>(),
                    )
                };
                w.block = std::ptr::null_mut();
            }
        }
        t.registered = false;
    });
}

fn register(t: &mut Tls) {
    KEY_ONCE.call_once(|| {
        let mut k: libc::pthread_key_t = 0;
        // SAFETY: valid out-pointer and a destructor that lives forever.
        if unsafe { libc::pthread_key_create(&mut k, Some(thread_exit)) } == 0 {
            KEY.store(k, Ordering::Relaxed);
        }
    });
    let k = KEY.load(Ordering::Relaxed);
    if k != u32::MAX {
        // SAFETY: a key we created; any non-null value makes the destructor run.
        unsafe { libc::pthread_setspecific(k, 1 as *const libc::c_void) };
    }
    t.registered = true;
}

/// Gives a way's slots back to its heap (if that heap still has the way's generation).
fn flush(w: &mut Way) {
    if w.heap.is_null() || w.block.is_null() {
        w.heap = null();
        return;
    }
    // SAFETY: heap descriptors live forever; the block is this thread's.
    let (heap, b) = unsafe { (&*w.heap, &mut *w.block) };
    for c in 0..LFH_CLASSES {
        let n = b.classes[c].n;
        if n > 0 {
            heap.give_back(w.gen, c, &b.classes[c].items[..n]);
            b.classes[c].n = 0;
        }
    }
    w.heap = null();
}

/// Makes this thread's way for `heap` current, flushing what it held for another heap.
fn claim<'t>(t: &'t mut Tls, heap: &Heap, gen: u64) -> Option<&'t mut Block> {
    if !t.registered {
        register(t);
    }
    let w = way_of(t, heap);
    if !std::ptr::eq(w.heap, heap) || w.gen != gen {
        let stale_same_heap = std::ptr::eq(w.heap, heap);
        if stale_same_heap {
            // A destroyed generation of this heap: its slots are gone.
            // SAFETY: the block is this thread's (or null).
            if let Some(b) = unsafe { w.block.as_mut() } {
                b.classes.iter_mut().for_each(|s| s.n = 0);
            }
            w.heap = null();
        } else {
            flush(w);
        }
        if w.block.is_null() {
            let b = Meta.allocate_zeroed(Layout::new::<Block>()).ok()?;
            w.block = b.as_ptr().cast();
        }
        w.heap = heap;
        w.gen = gen;
    }
    // SAFETY: this thread's own block.
    unsafe { w.block.as_mut() }
}

/// The way `heap` uses in this thread's cache.
#[inline(always)]
fn way_of<'t>(t: &'t mut Tls, heap: &Heap) -> &'t mut Way {
    if heap.is_process() {
        &mut t.process
    } else {
        &mut t.ways[heap.slot & (WAYS - 1)]
    }
}

impl Block {
    /// Pops a slot of class `c`.
    #[inline(always)]
    fn pop(&mut self, c: usize) -> Option<Item> {
        let s = self.classes.get_mut(c)?;
        if s.n == 0 || s.n > K {
            return None;
        }
        s.n -= 1;
        Some(s.items[s.n])
    }

    /// Pushes slot `p` of class `c` if its stack has room.
    #[inline(always)]
    fn try_push(&mut self, c: usize, p: Item) -> bool {
        match self.classes.get_mut(c) {
            Some(s) if s.n < K => {
                s.items[s.n] = p;
                s.n += 1;
                true
            }
            _ => false,
        }
    }
}

/// The block of way `w` if it caches `heap`, of generation `gen` (`None`: the process heap,
/// whose generation never changes).
#[inline(always)]
fn current<'t>(w: &'t mut Way, heap: &Heap, gen: Option<u64>) -> Option<&'t mut Block> {
    if !std::ptr::eq(w.heap, heap) || gen.is_some_and(|g| g != w.gen) {
        return None;
    }
    // SAFETY: a way with a heap has a block (set in `claim`), this thread's own.
    Some(unsafe { &mut *w.block })
}

/// [`pop`] for the process heap `heap` (the caller knows it is): no generation compare.
#[inline(always)]
pub(crate) fn pop_process(heap: &Heap, c: usize) -> Option<Item> {
    // SAFETY: this thread's cache; no other reference to it is live.
    let t = unsafe { &mut *tls()? };
    current(&mut t.process, heap, None)?.pop(c)
}

/// [`try_push`] for the process heap `heap` (the caller knows it is).
#[inline(always)]
pub(crate) fn try_push_process(heap: &Heap, c: usize, p: Item) -> bool {
    let Some(t) = tls() else { return false };
    // SAFETY: this thread's cache; no other reference to it is live.
    let t = unsafe { &mut *t };
    current(&mut t.process, heap, None).is_some_and(|b| b.try_push(c, p))
}

/// Pops a cached slot of class `c` of `heap`.
#[inline(always)]
pub(crate) fn pop(heap: &Heap, c: usize) -> Option<Item> {
    // SAFETY: this thread's cache; no other reference to it is live.
    let t = unsafe { &mut *tls()? };
    let gen = heap.generation();
    current(way_of(t, heap), heap, Some(gen))?.pop(c)
}

/// Caches the free slot `p` of class `c` if this thread's way for `heap` is current and the
/// class's stack has room (the fast path: a store and a count); `false` changes nothing.
#[inline(always)]
pub(crate) fn try_push(heap: &Heap, c: usize, p: Item) -> bool {
    let Some(t) = tls() else { return false };
    // SAFETY: this thread's cache; no other reference to it is live.
    let t = unsafe { &mut *t };
    let gen = heap.generation();
    current(way_of(t, heap), heap, Some(gen)).is_some_and(|b| b.try_push(c, p))
}

/// This thread's cache, or `None` while the thread-local is being torn down.
#[inline(always)]
pub(crate) fn tls() -> Option<*mut Tls> {
    super::tls::get()
}

/// Caches the free slot `p` of class `c`; when the stack is full, half of it goes back to the
/// pages first. Without a cache (thread exiting) the slot goes straight back.
#[cold]
#[inline(never)]
pub(crate) fn push(heap: &Heap, c: usize, p: Item) {
    let gen = heap.generation();
    let done = tls()
        .map(|t| {
            // SAFETY: this thread's cache; no reference to it outlives this closure.
            let t = unsafe { &mut *t };
            let w = way_of(t, heap);
            let b = if std::ptr::eq(w.heap, heap) && w.gen == gen {
                // SAFETY: a way with a heap has a block.
                unsafe { &mut *w.block }
            } else {
                match claim(t, heap, gen) {
                    Some(b) => b,
                    None => return false,
                }
            };
            let mut n = b.classes[c].n;
            if n == K {
                // One batch back (the class keeps it whole: `lfh.rs`).
                heap.give_back(gen, c, &b.classes[c].items[K - BATCH..]);
                n = K - BATCH;
            }
            b.classes[c].items[n] = p;
            b.classes[c].n = n + 1;
            true
        })
        .unwrap_or(false);
    if !done {
        heap.give_back(gen, c, &[p]);
    }
}

/// Caches several free slots of class `c` (a refill's surplus); what does not fit goes back.
pub(crate) fn fill(heap: &Heap, c: usize, slots: &[Item]) {
    let gen = heap.generation();
    let rest = tls()
        .map(|t| {
            // SAFETY: this thread's cache.
            let t = unsafe { &mut *t };
            let Some(b) = claim(t, heap, gen) else { return 0 };
            let n = b.classes[c].n;
            let take = slots.len().min(K - n);
            b.classes[c].items[n..n + take].copy_from_slice(&slots[..take]);
            b.classes[c].n = n + take;
            take
        })
        .unwrap_or(0);
    if rest < slots.len() {
        heap.give_back(gen, c, &slots[rest..]);
    }
}

/// Gives back everything this thread caches for `heap` (HeapCompact, HeapDestroy).
pub(crate) fn flush_heap(heap: &Heap) {
    let _ = tls().map(|t| {
        // SAFETY: this thread's cache.
        let t = unsafe { &mut *t };
        let w = way_of(t, heap);
        if std::ptr::eq(w.heap, heap) {
            flush(w);
        }
    });
}

const _: () = assert!(std::mem::size_of::<Stack>() == 256);
