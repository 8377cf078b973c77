//! The allocation a thread last changed through VirtualProtect's fast path, kept by a counted
//! reference: the thread's next call on it finds it without the index's lookup and without an
//! epoch pin (two atomic read-modify-writes on a counter all threads share).
//!
//! The reference keeps the allocation's descriptor alive, not its pages: a caller takes the
//! allocation's handler lock and checks that it is still live (released, split or replaced
//! allocations are not) before acting, exactly as after a lookup. Only ordinary allocations
//! are kept (a view's descriptor would keep its section alive). Entries are tagged with their
//! space's process-unique number, so an entry of a dropped space never matches another one.
//!
//! A thread keeps at most one entry. It is read from two plain thread-locals (no destructor:
//! registering one would allocate on the process heap, which these calls never do), and
//! owned by a POSIX thread-specific value, whose destructor drops it when the thread exits —
//! glibc keeps the first 32 keys' values in the thread descriptor, so setting one never
//! allocates either. If our key is not among them, nothing is remembered.

use super::Allocation;
use crate::os::linux::metaheap::MetaArc as Arc;
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The process-unique number of a new space (never 0).
pub(crate) fn new_space_uid() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

thread_local! {
    /// The remembered allocation's space number (0: none).
    static SPACE: Cell<u64> = const { Cell::new(0) };
    /// Its block (`Arc::into_raw`), owned by the thread-specific value of [`key`].
    static BLOCK: Cell<*mut ()> = const { Cell::new(std::ptr::null_mut()) };
}

/// Keys glibc keeps in the thread descriptor (`PTHREAD_KEY_2NDLEVEL_SIZE`): setting a value
/// of a later key may allocate.
const INLINE_KEYS: u32 = 32;

/// Our thread-specific key, made once (`None`: none could be made, or it is not one of the
/// first 32).
fn key() -> Option<libc::pthread_key_t> {
    /// The key + 1 (0: not made yet; `u32::MAX`: unusable).
    static KEY: AtomicU32 = AtomicU32::new(0);
    match KEY.load(Ordering::Acquire) {
        0 => {}
        u32::MAX => return None,
        k => return Some(k - 1),
    }
    let mut k: libc::pthread_key_t = 0;
    // SAFETY: `k` is writable; `drop_entry` has the destructor's signature.
    let made = unsafe { libc::pthread_key_create(&mut k, Some(drop_entry)) } == 0;
    let mine = if made && k < INLINE_KEYS { k + 1 } else { u32::MAX };
    match KEY.compare_exchange(0, mine, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) if mine == u32::MAX => {
            if made {
                // SAFETY: our own key, never used.
                unsafe { libc::pthread_key_delete(k) };
            }
            None
        }
        Ok(_) => Some(k),
        Err(theirs) => {
            // Another thread made one first: use it, give ours back.
            if made {
                // SAFETY: our own key, never used.
                unsafe { libc::pthread_key_delete(k) };
            }
            (theirs != u32::MAX).then(|| theirs - 1)
        }
    }
}

/// The key's destructor, at thread exit: drops the thread's reference.
extern "C" fn drop_entry(p: *mut libc::c_void) {
    if p.is_null() {
        return;
    }
    // The thread-locals are plain statics of this (exiting) thread, still readable.
    let _ = SPACE.try_with(|s| s.set(0));
    let _ = BLOCK.try_with(|b| b.set(std::ptr::null_mut()));
    // SAFETY: the value was set by `remember` from `Arc::into_raw`, and glibc passes it once.
    drop(unsafe { Arc::<Allocation>::from_raw(p.cast()) });
}

/// The calling thread's remembered allocation of space `space` if it contains `addr`.
///
/// # Safety
///
/// The returned reference is valid until this thread calls [`remember`] again (or exits):
/// the caller must not keep it beyond that.
#[inline(always)]
pub(crate) unsafe fn find<'a>(space: u64, addr: usize) -> Option<&'a Allocation> {
    if SPACE.with(Cell::get) != space {
        return None;
    }
    let p = BLOCK.with(Cell::get);
    if p.is_null() {
        return None;
    }
    // SAFETY: the thread's entry holds a counted reference to this block until it is
    // replaced, which the caller's contract rules out while the result is used.
    let a: &'a Allocation = unsafe { Arc::value_of_raw(p) };
    (a.base <= addr && addr < a.end()).then_some(a)
}

/// Makes `a` (an ordinary allocation of space `space`) the calling thread's remembered one;
/// the previous one's reference is dropped. Does nothing where no key is available.
pub(crate) fn remember(space: u64, a: Arc<Allocation>) {
    let Some(k) = key() else {
        return;
    };
    let p = Arc::into_raw(a);
    // SAFETY: our key; a key below 32 stores the value in the thread descriptor (no
    // allocation). The value owns the reference from now on.
    if unsafe { libc::pthread_setspecific(k, p.cast()) } != 0 {
        // SAFETY: `p` came from `Arc::into_raw` just above and was not stored.
        drop(unsafe { Arc::<Allocation>::from_raw(p) });
        return;
    }
    SPACE.with(|s| s.set(space));
    let old = BLOCK.with(|b| b.replace(p));
    if !old.is_null() {
        // SAFETY: `old` was the thread's previous value, replaced just above: taken back once.
        drop(unsafe { Arc::<Allocation>::from_raw(old) });
    }
}
