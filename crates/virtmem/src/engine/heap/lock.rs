//! The heap's locks, which never allocate and survive `fork`:
//!
//! * [`HeapMutex`]: the heap lock, recursive like a critical section (H54) so that HeapLock
//!   can be taken across calls and again by its owner. A futex word (0 free, 1 held, 2 held
//!   with waiters), the owner's identity and a depth. The owner is identified by the address
//!   of a thread-local, which a forked child's only thread keeps, so locks the forking thread
//!   took in `fork`'s prepare handler are released by the same code in parent and child.
//! * [`Spin`]: a small spin lock (then `sched_yield`) for the front end's size classes, held
//!   only for a few list operations and never across a syscall.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering};

thread_local! {
    static ME: u8 = const { 0 };
}

/// This thread's identity for lock ownership (the address of a thread-local: on x86-64
/// Linux the heap state block of `tls.rs`, found without a call).
#[inline]
pub(crate) fn me() -> usize {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if let Some(p) = super::tls::get() {
        return p as usize;
    }
    ME.with(|m| m as *const u8 as usize)
}

/// glibc's `__libc_single_threaded` (2.32+), found once with `dlsym`: 0 not looked up yet,
/// 1 unavailable, else its address.
static SINGLE: AtomicUsize = AtomicUsize::new(0);

/// Whether this process has had only one thread so far (glibc's `__libc_single_threaded`;
/// `false` where that is unavailable). While it is true, the calling thread is the only one
/// that can reach a heap, so the heap lock has nothing to exclude (H54 is about other
/// threads; the lock is recursive for this one): [`super::Heaps`]'s back-end calls skip it,
/// as glibc's malloc skips its arena lock. The flag only turns false in `pthread_create`,
/// called by this same thread, which publishes everything done so far to the new thread.
#[inline]
pub(crate) fn single_threaded() -> bool {
    let p = SINGLE.load(Ordering::Relaxed);
    if p > 1 {
        // SAFETY: the address of glibc's `char __libc_single_threaded`, which lives for the
        // process; read as an atomic byte (same size and alignment).
        return unsafe { &*(p as *const AtomicU8) }.load(Ordering::Relaxed) != 0;
    }
    p == 0 && single_threaded_init()
}

#[cold]
#[inline(never)]
fn single_threaded_init() -> bool {
    // SAFETY: a NUL-terminated name; RTLD_DEFAULT searches every loaded object.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__libc_single_threaded".as_ptr()) };
    let v = if p.is_null() { 1 } else { p as usize };
    SINGLE.store(v, Ordering::Relaxed);
    v > 1 && single_threaded()
}

fn futex_wait(word: &AtomicU32, val: u32) {
    // SAFETY: FUTEX_WAIT on a valid, aligned u32 that lives as long as the lock; a spurious
    // return is handled by the caller's loop.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            val,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid, aligned u32; waking nobody is harmless.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// A recursive lock (see the module documentation).
pub(crate) struct HeapMutex {
    word: AtomicU32,
    owner: AtomicUsize,
    depth: UnsafeCell<u32>,
}

// SAFETY: `depth` is touched only by the thread that holds the lock (`owner == me()`).
unsafe impl Sync for HeapMutex {}
// SAFETY: as above; the lock holds no thread-bound data.
unsafe impl Send for HeapMutex {}

impl HeapMutex {
    /// An unlocked lock.
    pub(crate) const fn new() -> HeapMutex {
        HeapMutex {
            word: AtomicU32::new(0),
            owner: AtomicUsize::new(0),
            depth: UnsafeCell::new(0),
        }
    }

    /// Takes the lock (again, if this thread holds it).
    #[inline]
    pub(crate) fn lock(&self) {
        let me = me();
        if self.owner.load(Ordering::Relaxed) == me {
            // SAFETY: we hold the lock.
            unsafe { *self.depth.get() += 1 };
            return;
        }
        if self
            .word
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.wait();
        }
        self.owner.store(me, Ordering::Relaxed);
        // SAFETY: we hold the lock.
        unsafe { *self.depth.get() = 1 };
    }

    /// Waits for the lock held by another thread, then takes it.
    #[cold]
    #[inline(never)]
    fn wait(&self) {
        let mut spins = 0;
        loop {
            if spins < 100 {
                spins += 1;
                std::hint::spin_loop();
                if self.word.load(Ordering::Relaxed) == 0
                    && self
                        .word
                        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    return;
                }
                continue;
            }
            if self.word.swap(2, Ordering::Acquire) == 0 {
                return;
            }
            futex_wait(&self.word, 2);
        }
    }

    /// Whether this thread holds the lock.
    pub(crate) fn held_by_me(&self) -> bool {
        self.owner.load(Ordering::Relaxed) == me()
    }

    /// Releases every level this thread holds (HeapDestroy of a heap its caller locked with
    /// HeapLock: the descriptor is reused by a later HeapCreate, which must find it unlocked).
    /// Nothing if this thread does not hold it.
    pub(crate) fn unlock_all(&self) {
        if !self.held_by_me() {
            return;
        }
        // SAFETY: we hold the lock.
        unsafe { *self.depth.get() = 1 };
        self.unlock();
    }

    /// Releases one level; `false` (nothing changed) if this thread does not hold it (H57).
    #[inline]
    pub(crate) fn unlock(&self) -> bool {
        if !self.held_by_me() {
            return false;
        }
        // SAFETY: we hold the lock.
        let d = unsafe { &mut *self.depth.get() };
        *d -= 1;
        if *d == 0 {
            self.owner.store(0, Ordering::Relaxed);
            if self.word.swap(0, Ordering::Release) == 2 {
                futex_wake(&self.word);
            }
        }
        true
    }
}

/// A spin lock around a value.
pub(crate) struct Spin<T> {
    held: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through `with`, which holds the lock.
unsafe impl<T: Send> Sync for Spin<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Spin<T> {}

impl<T> Spin<T> {
    /// A free lock around `value`.
    pub(crate) const fn new(value: T) -> Spin<T> {
        Spin {
            held: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock (for `fork`'s prepare handler); [`Spin::release`] gives it back.
    pub(crate) fn acquire(&self) {
        let mut spins = 0u32;
        while self
            .held
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins > 64 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Releases a lock taken by [`Spin::acquire`].
    pub(crate) fn release(&self) {
        self.held.store(false, Ordering::Release);
    }

    /// The value's address (for a holder of [`Spin::acquire`]).
    pub(crate) fn value_ptr(&self) -> *mut T {
        self.value.get()
    }

    /// Runs `f` on the value with the lock held.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.acquire();
        struct Rel<'a>(&'a AtomicBool);
        impl Drop for Rel<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _r = Rel(&self.held);
        // SAFETY: we hold the lock until `_r` drops.
        f(unsafe { &mut *self.value.get() })
    }
}
