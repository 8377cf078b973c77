//! The SIGSEGV handler behind guard pages and signal-driven write watch.
//!
//! Only allocations whose page state faults can change are listed, in a table published as an
//! immutable snapshot (`crate::engine::snapshot`), so the handler finds them without locks or
//! allocation. For a fault at a listed address the handler takes the allocation's handler lock
//! (`Allocation::handler_lock`, a spin lock that operations hold while they run), reads the
//! page's state from its snapshot, asks the kernel for the page's current protection
//! (PROCMAP_QUERY), and:
//!
//! * an armed guard page: gives the page its real protection (the guard is gone — one shot)
//!   and raises the guard-page violation to the registered handler, outside the lock;
//! * a clean page of a signal-watched allocation hit by a write: gives it write permission
//!   (which records the write) and retries;
//! * anything else — and every fault outside listed allocations — goes to the handler that was
//!   installed before ours (or the default action), so Rust's stack-overflow report and other
//!   libraries keep working.
//!
//! Ownership: an operation that gives an allocation's pages away (release, placeholder split,
//! coalesce, replace, preserve) marks it dead while holding the handler lock and before the
//! kernel range changes; the handler checks `live` after taking the lock, and for a dead
//! allocation touches nothing and lets the access retry (it then finds the new owner, or
//! none). A retry is only returned when the kernel (PROCMAP_QUERY, or the probe) may let the
//! access through, and consecutive retries of one thread in one state are bounded
//! (`MAX_RETRIES`), so a disagreement between bookkeeping and kernel never spins.
//!
//! The handler saves `errno` on entry and restores it on every way out, touches no Rust
//! thread-local (it takes the handler lock as a marker value, asks `gettid` only when an
//! operation holds that lock, and counts retries per `pthread_self()`), and only uses
//! async-signal-safe operations: atomics, `mprotect`, `ioctl`, `process_vm_readv`, `write`,
//! `gettid`, `pthread_self` (a read of the thread pointer), `sigaction`, `pthread_sigmask`,
//! `raise`, `abort`.

use crate::engine::fault_state::effective_state;
use crate::engine::fault_table::FaultTable;
use crate::engine::snapshot::SnapshotCell;
use crate::engine::Allocation;
use crate::os::HostProt;
use crate::rules::plan::kernel_prot;
use crate::rules::runs::PageState;
use crate::vocab::consts::PAGE_GUARD;
use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use crate::os::linux::metaheap::MetaArc as Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, Once, OnceLock};

/// What the faulting access was doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A load (EXCEPTION_READ_FAULT, 0).
    Read,
    /// A store (EXCEPTION_WRITE_FAULT, 1).
    Write,
    /// An instruction fetch (EXCEPTION_EXECUTE_FAULT, 8).
    Execute,
}

impl Access {
    /// The Windows `ExceptionInformation[0]` value.
    pub const fn win32(self) -> u32 {
        match self {
            Access::Read => 0,
            Access::Write => 1,
            Access::Execute => 8,
        }
    }
}

/// A guard-page violation (STATUS_GUARD_PAGE_VIOLATION): the first touch of a PAGE_GUARD page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardViolation {
    /// The faulting address.
    pub address: usize,
    /// The kind of access.
    pub access: Access,
}

/// A guard-page handler: return `true` to continue (the access is retried and succeeds —
/// the guard is gone), `false` to treat the violation as unhandled (the process aborts).
///
/// It runs inside a signal handler on the faulting thread: it may read and write memory and
/// use atomics, but must not allocate, take locks that the interrupted code may hold, or
/// unwind. It may call virtmem functions only if the faulting code was not inside one.
pub type GuardHandler = dyn Fn(&GuardViolation) -> bool + Send + Sync;

static GUARD_HANDLER: AtomicPtr<Box<GuardHandler>> = AtomicPtr::new(std::ptr::null_mut());

/// Registers the process-wide guard-page handler (`None`: unhandled violations print
/// "guard page violation at 0x…" on stderr and abort, as an unhandled exception ends a
/// Windows process). Returns nothing; previous handlers are leaked on purpose (a fault may be
/// running one).
///
/// # Safety
///
/// The handler runs inside a SIGSEGV handler, on whichever thread touched the guard page, at
/// any instruction of it: it must be async-signal-safe. It may read and write memory it
/// owns and use atomics; it must not allocate or free, take a lock (the interrupted code may
/// hold it), use thread-locals that may not be initialised yet, unwind, or call virtmem
/// when the faulting code may itself be inside a virtmem call.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// static HITS: AtomicUsize = AtomicUsize::new(0);
/// // SAFETY: the handler only increments an atomic.
/// unsafe {
///     virtmem::set_guard_page_handler(Some(Box::new(|v| {
///         HITS.fetch_add(1, Ordering::SeqCst);
///         let _ = v.address;
///         true // continue: the access is retried and succeeds
///     })))
/// };
/// ```
pub unsafe fn set_guard_page_handler(handler: Option<Box<GuardHandler>>) {
    let p = handler.map_or(std::ptr::null_mut(), |h| Box::into_raw(Box::new(h)));
    GUARD_HANDLER.store(p, Ordering::SeqCst);
}

/// The allocations faults can change, by base: a persistent tree, so a change is O(log n)
/// and the handler's lookup lock- and allocation-free (`engine::fault_table`).
type Table = FaultTable<Arc<Allocation>>;

static TABLE: OnceLock<SnapshotCell<Table>> = OnceLock::new();
static TABLE_WRITE: Mutex<()> = Mutex::new(());
/// A descriptor of /proc/self/maps for PROCMAP_QUERY from the handler (-1: none).
static MAPS_FD: AtomicI32 = AtomicI32::new(-1);
static INSTALLED: Once = Once::new();
static ACTIVE: AtomicBool = AtomicBool::new(false);

struct OldActions(UnsafeCell<[MaybeUninit<libc::sigaction>; 2]>);
// SAFETY: written once inside `INSTALLED.call_once`, before our handler can run; read only
// afterwards.
unsafe impl Sync for OldActions {}
static OLD: OldActions = OldActions(UnsafeCell::new([
    MaybeUninit::uninit(),
    MaybeUninit::uninit(),
]));

fn table() -> &'static SnapshotCell<Table> {
    TABLE.get_or_init(|| SnapshotCell::new(FaultTable::new()))
}

/// Lists `a` for the handler (idempotent) and installs the handler on first use.
pub(crate) fn add(a: &Arc<Allocation>) {
    let _w = TABLE_WRITE.lock().unwrap_or_else(|e| e.into_inner());
    // Under TABLE_WRITE, so that `fork` (which holds it) never finds the installation half done.
    install();
    let t = table();
    // O(1): the current version shares its nodes (we are the only writer).
    let v = t.read(|v| v.clone());
    if v.get(a.base).is_some_and(|x| Arc::ptr_eq(x, a)) {
        return;
    }
    t.publish(v.insert(a.base, a.clone()));
}

/// Unlists the allocation based at `base` (before it is unmapped).
pub(crate) fn remove(base: usize) {
    let Some(t) = TABLE.get() else { return };
    let _w = TABLE_WRITE.lock().unwrap_or_else(|e| e.into_inner());
    let v = t.read(|v| v.clone());
    if let Some((v, _)) = v.remove(base) {
        t.publish(v);
    }
}

fn install() {
    INSTALLED.call_once(|| {
        // SAFETY: opening a procfs file; the descriptor is kept for the process's lifetime.
        let fd = unsafe {
            libc::open(
                c"/proc/self/maps".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        MAPS_FD.store(fd, Ordering::SeqCst);
        read_switches();
        for (i, sig) in [libc::SIGSEGV, libc::SIGBUS].into_iter().enumerate() {
            // SAFETY: a zeroed sigaction is a valid value to fill in; `on_fault` has the
            // SA_SIGINFO signature; OLD is written before the new handler is installed and
            // never again.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_fault as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
                libc::sigemptyset(&mut sa.sa_mask);
                let old = (*OLD.0.get())[i].as_mut_ptr();
                libc::sigaction(sig, &sa, old);
            }
        }
        ACTIVE.store(true, Ordering::SeqCst);
    });
}

use crate::os::linux::procmaps::{ProcmapQuery, PROCMAP_QUERY};
/// `si_code` of a fault on a mapped page the access is not allowed to (asm-generic/siginfo.h).
const SEGV_ACCERR: libc::c_int = 2;

/// Set (once, at install, from `VIRTMEM_NO_PROCMAP_QUERY=1`): the handler behaves as on a
/// kernel without PROCMAP_QUERY and uses the readability probe.
static NO_PROCMAP_QUERY: AtomicBool = AtomicBool::new(false);

/// Reads the handler's switches from the environment. Not in the handler: `getenv` reads
/// `environ` without allocating, but is not async-signal-safe.
fn read_switches() {
    // SAFETY: `getenv` with a NUL-terminated name; the result is only compared, not kept.
    let v = unsafe { libc::getenv(c"VIRTMEM_NO_PROCMAP_QUERY".as_ptr()) };
    // SAFETY: a non-null result of getenv points to a NUL-terminated string.
    let on = !v.is_null() && unsafe { std::ffi::CStr::from_ptr(v) }.to_bytes() == b"1";
    NO_PROCMAP_QUERY.store(on, Ordering::SeqCst);
}

/// What the handler knows of the kernel's current protection of a page.
#[derive(Clone, Copy)]
struct KernelView {
    prot: HostProt,
    /// From PROCMAP_QUERY. Otherwise from the probe, which only tells PROT_NONE from
    /// readable: write and execute permission are then unknown.
    exact: bool,
}

impl KernelView {
    /// Whether the kernel may let `access` through now. An unknown answer (the probe found
    /// the page readable, the access writes or executes) says yes: the retry bound
    /// (`note_retry`) ends the loop if it was wrong.
    fn may_permit(self, access: Access) -> bool {
        match access {
            Access::Read => self.prot.read(),
            Access::Write => self.prot.write() || (!self.exact && self.prot.read()),
            Access::Execute => self.prot.exec() || (!self.exact && self.prot.read()),
        }
    }
}

/// The kernel's current protection of the page at `addr`, async-signal-safe: PROCMAP_QUERY
/// where the kernel has it, else a readability probe (`process_vm_readv` on ourselves), which
/// tells PROT_NONE from readable.
fn kernel_prot_now(addr: usize) -> KernelView {
    let fd = MAPS_FD.load(Ordering::Relaxed);
    if fd >= 0 && !NO_PROCMAP_QUERY.load(Ordering::Relaxed) {
        let mut q = ProcmapQuery {
            size: size_of::<ProcmapQuery>() as u64,
            query_addr: addr as u64,
            ..ProcmapQuery::default()
        };
        // SAFETY: PROCMAP_QUERY takes a pointer to `struct procmap_query` (no name or build-id
        // buffers requested: their sizes are 0).
        if unsafe { libc::ioctl(fd, PROCMAP_QUERY as libc::c_ulong, &mut q) } == 0 {
            // The query answers with the first mapping at or after `addr`.
            if q.vma_start <= addr as u64 && (addr as u64) < q.vma_end {
                return KernelView {
                    prot: HostProt::new(
                        q.vma_flags & 1 != 0,
                        q.vma_flags & 2 != 0,
                        q.vma_flags & 4 != 0,
                    ),
                    exact: true,
                };
            }
            return KernelView {
                prot: HostProt::NONE,
                exact: true,
            };
        }
    }
    let mut byte = 0u8;
    let local = libc::iovec {
        iov_base: &mut byte as *mut u8 as *mut c_void,
        iov_len: 1,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut c_void,
        iov_len: 1,
    };
    // SAFETY: reads one byte of our own address space into `byte`; the kernel checks access.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    KernelView {
        prot: if n == 1 {
            HostProt::READ
        } else {
            HostProt::NONE
        },
        exact: false,
    }
}

fn mprotect_page(addr: usize, len: usize, p: HostProt) -> bool {
    let f = crate::os::linux::prot_flags(p).bits() as libc::c_int;
    // SAFETY: changes the protection of a page of an allocation that owns it (checked live
    // under its handler lock, which every operation that gives pages away holds).
    unsafe { libc::mprotect(addr as *mut c_void, len, f) == 0 }
}

/// What the handler decided.
enum Outcome {
    /// Not ours: chain.
    NotOurs,
    /// Retry the access (a write-watch hit was recorded, another thread or operation made
    /// the access valid, or the allocation gave its pages away). `key` names the state the
    /// decision was made in, for the retry bound.
    Retry { key: u64 },
    /// A guard page was consumed: raise the violation.
    Guard { key: u64 },
}

/// The decision for a fault at `addr` in allocation `a`. Async-signal-safe.
fn decide(a: &Allocation, addr: usize, access: Access) -> Outcome {
    let page = addr & !(a.page_size - 1);
    let idx = (page - a.base) / a.page_size;
    let locked = a.handler_lock();
    // Under the handler lock: no operation is half done, and `live` and the runs are the
    // ones the last operation published.
    let key = retry_key(a, page);
    let out = if !a.is_live() {
        // Released, or swapped out of the index (placeholder split, coalesce, replace,
        // preserve) while we waited: its pages may belong to someone else now. Touch nothing;
        // the access faults again and finds the new owner, or none.
        Outcome::Retry { key }
    } else {
        decide_live(a, page, idx, access, key)
    };
    if locked {
        a.handler_unlock();
    }
    out
}

fn decide_live(a: &Allocation, page: usize, idx: usize, access: Access, key: u64) -> Outcome {
    let st: PageState = a.read(|t| t.run_at(idx).state);
    if !st.committed {
        committed_elsewhere(a, page, idx, key)
    } else if st.protect & PAGE_GUARD != 0 {
        // The runs may be stale (a guard is consumed by changing only the kernel's
        // protection): ask the kernel.
        let now = kernel_prot_now(page);
        if now.may_permit(access) {
            // Another thread consumed it between our fault and now.
            Outcome::Retry { key }
        } else if effective_state(st, a.armed(), now.prot).protect & PAGE_GUARD != 0 {
            // An armed guard page (the kernel keeps it PROT_NONE): one shot. Give it its
            // protection without the guard.
            let real = kernel_prot(
                PageState {
                    protect: st.protect & !PAGE_GUARD,
                    ..st
                },
                a.armed(),
            );
            if mprotect_page(page, a.page_size, real) {
                Outcome::Guard { key }
            } else {
                Outcome::NotOurs
            }
        } else {
            watch_hit(a, page, st, access, key)
        }
    } else if access_allowed(kernel_prot(st, a.armed()), access) {
        // The runs allow the access (an operation on another thread made it valid while we
        // waited): retry only if the kernel agrees, else bookkeeping and kernel disagree and
        // retrying would fault forever — the fault takes its course.
        if kernel_prot_now(page).may_permit(access) {
            Outcome::Retry { key }
        } else {
            Outcome::NotOurs
        }
    } else {
        watch_hit(a, page, st, access, key)
    }
}

/// A reserved page of a view of a SEC_RESERVE section that another view or another process
/// committed since this view last looked (VA3): the section's backing object knows
/// (`lseek(SEEK_DATA)`, async-signal-safe). The page gets the view's own protection and the
/// access is retried; the bookkeeping catches up at the next operation (`Space::sync_view`).
fn committed_elsewhere(a: &Allocation, page: usize, idx: usize, key: u64) -> Outcome {
    let Some(v) = &a.view else {
        return Outcome::NotOurs;
    };
    if !v.section.is_reserve() {
        return Outcome::NotOurs;
    }
    let offset = v.section.data_offset + v.offset + (idx * a.page_size) as u64;
    if !crate::os::linux::sections::allocated_now(v.section.backing, offset) {
        return Outcome::NotOurs;
    }
    let prot = crate::rules::protection::host_prot(a.alloc_protect & 0xFF);
    if mprotect_page(page, a.page_size, prot) {
        Outcome::Retry { key }
    } else {
        Outcome::NotOurs
    }
}

fn access_allowed(p: HostProt, access: Access) -> bool {
    match access {
        Access::Read => p.read(),
        Access::Write => p.write(),
        Access::Execute => p.exec(),
    }
}

/// A write to a clean page of a signal-watched allocation: record it by giving the page
/// its full protection (idempotent, so a write another thread already recorded is harmless).
fn watch_hit(a: &Allocation, page: usize, st: PageState, access: Access, key: u64) -> Outcome {
    let full = kernel_prot(
        PageState {
            protect: st.protect & !PAGE_GUARD,
            dirty: true,
            ..st
        },
        false,
    );
    // Where the access kind cannot be decoded it reads as a read: assume a write then.
    let write = access == Access::Write || !cfg!(all(target_arch = "x86_64", target_os = "linux"));
    if a.armed() && write && full.write() && mprotect_page(page, a.page_size, full) {
        Outcome::Retry { key }
    } else {
        Outcome::NotOurs
    }
}

// ----- the retry bound ---------------------------------------------------------------------

/// Consecutive retries of one thread at one page in one state of its allocation after which
/// the fault takes its course. A legitimate retry changes something (the guard is consumed,
/// the write recorded, the allocation is gone from the table), so the same key faulting
/// again this often means kernel and bookkeeping disagree.
const MAX_RETRIES: u32 = 32;

/// One thread's last retry: fixed-size, lock-free storage indexed by a hash of the thread's
/// `pthread_self()` (a read of the thread pointer: no system call, no TLS). Threads whose
/// hashes collide share a slot; they can only reset each other's count (the full token is
/// compared), so the bound then holds per colliding group, not per thread.
struct RetrySlot {
    tid: AtomicUsize,
    key: AtomicU64,
    count: AtomicU32,
}

const RETRY_SLOTS: usize = 256;
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: RetrySlot = RetrySlot {
    tid: AtomicUsize::new(0),
    key: AtomicU64::new(0),
    count: AtomicU32::new(0),
};
static RETRIES: [RetrySlot; RETRY_SLOTS] = [EMPTY_SLOT; RETRY_SLOTS];

/// The state a retry decision was made in: the allocation (its id), how many operations it
/// has seen, and the page. Read under the handler lock.
fn retry_key(a: &Allocation, page: usize) -> u64 {
    let mut h = a.id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^= a.generation().wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= (page as u64).rotate_left(17);
    h
}

/// This thread's token for [`note_retry`]: its `pthread_self()`, never 0 for a live thread.
fn thread_token() -> usize {
    // SAFETY: pthread_self has no arguments and cannot fail; it reads the thread pointer.
    unsafe { libc::pthread_self() as usize }
}

/// Counts a retry of thread `tid` (a [`thread_token`]) in state `key`; false once the same key
/// has been retried [`MAX_RETRIES`] times in a row (the slot then starts over).
fn note_retry(tid: usize, key: u64) -> bool {
    let h = tid ^ (tid >> 12) ^ (tid >> 24);
    let s = &RETRIES[h % RETRY_SLOTS];
    if s.tid.load(Ordering::Relaxed) == tid && s.key.load(Ordering::Relaxed) == key {
        let n = s.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= MAX_RETRIES {
            return true;
        }
        s.count.store(0, Ordering::Relaxed);
        s.tid.store(0, Ordering::Relaxed);
        return false;
    }
    s.tid.store(tid, Ordering::Relaxed);
    s.key.store(key, Ordering::Relaxed);
    s.count.store(1, Ordering::Relaxed);
    true
}

fn access_kind(ctx: *mut c_void) -> Access {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        // SAFETY: the kernel passes a ucontext_t as the third argument of an SA_SIGINFO handler.
        let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
        let err = uc.uc_mcontext.gregs[libc::REG_ERR as usize];
        if err & 0x10 != 0 {
            return Access::Execute;
        }
        if err & 0x2 != 0 {
            return Access::Write;
        }
        Access::Read
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        let _ = ctx;
        Access::Read
    }
}

/// Writes "guard page violation at 0x…" to stderr and aborts (async-signal-safe).
fn unhandled(addr: usize) -> ! {
    let mut buf = *b"guard page violation at 0x0000000000000000\n";
    let digits = b"0123456789abcdef";
    for i in 0..16 {
        buf[26 + i] = digits[(addr >> ((15 - i) * 4)) & 0xF];
    }
    // SAFETY: writing a stack buffer to stderr, then aborting.
    unsafe {
        libc::write(2, buf.as_ptr() as *const c_void, buf.len());
        libc::abort()
    }
}

/// The interrupted code's `errno`, put back on every way out of the handler (and before
/// calling other code: the previous handler, the guard-page callback), so the handler's own
/// system calls never show through.
struct SavedErrno(libc::c_int);

impl SavedErrno {
    fn now() -> SavedErrno {
        // SAFETY: `__errno_location` returns this thread's errno slot (libc-managed, no TLS
        // of ours, always valid).
        SavedErrno(unsafe { *libc::__errno_location() })
    }

    fn restore(&self) {
        // SAFETY: as in `now`.
        unsafe { *libc::__errno_location() = self.0 };
    }
}

impl Drop for SavedErrno {
    fn drop(&mut self) {
        self.restore();
    }
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let errno = SavedErrno::now();
    handle(sig, info, ctx, &errno);
}

fn handle(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void, errno: &SavedErrno) {
    // SAFETY: the kernel passes a valid siginfo_t for SIGSEGV/SIGBUS.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    if sig == libc::SIGSEGV && code == SEGV_ACCERR {
        // No thread-local and no system call: see `thread_token` and `handler_lock`.
        let tid = thread_token();
        let outcome = TABLE.get().map_or(Outcome::NotOurs, |t| {
            t.read(|v| match v.floor(addr) {
                Some((_, a)) if addr < a.end() => decide(a, addr, access_kind(ctx)),
                _ => Outcome::NotOurs,
            })
        });
        match outcome {
            Outcome::Retry { key } => {
                if note_retry(tid, key) {
                    return;
                }
                // Retried too often without progress: the fault takes its course.
            }
            Outcome::Guard { key } => {
                let v = GuardViolation {
                    address: addr,
                    access: access_kind(ctx),
                };
                let h = GUARD_HANDLER.load(Ordering::SeqCst);
                errno.restore();
                // SAFETY: handlers are leaked, never freed, once stored.
                if !h.is_null() && unsafe { (**h)(&v) } {
                    if note_retry(tid, key) {
                        return;
                    }
                    // The guard keeps firing at the same page in the same state: the fault
                    // takes its course.
                } else {
                    unhandled(addr);
                }
            }
            Outcome::NotOurs => {}
        }
    }
    errno.restore();
    chain(sig, info, ctx, code);
}

/// Set once a previous handler installed with SA_RESETHAND has run (SIGSEGV, SIGBUS): the
/// kernel would have reset it to the default action.
static RESET_DONE: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// Passes a fault that is not ours to the handler installed before ours, as the kernel would
/// have: with the original siginfo and context, its `sa_flags` honoured (SA_SIGINFO or a
/// plain handler, SA_RESETHAND, SA_NODEFER) and its `sa_mask` blocked during the call. With
/// no previous handler (SIG_DFL, or SIG_IGN, which the kernel does not honour for a fault)
/// the default action happens.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void, code: libc::c_int) {
    let i = usize::from(sig == libc::SIGBUS);
    // SAFETY: OLD was filled before our handler was installed.
    let old = unsafe { (*OLD.0.get())[i].assume_init_ref() };
    let mut h = old.sa_sigaction;
    if h != libc::SIG_DFL
        && h != libc::SIG_IGN
        && old.sa_flags & libc::SA_RESETHAND != 0
        && RESET_DONE[i].swap(true, Ordering::SeqCst)
    {
        h = libc::SIG_DFL;
    }
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Sent by a process (kill, raise, sigqueue: si_code <= 0), not raised by an access.
        let sent = code <= 0;
        if sent && h == libc::SIG_IGN {
            // Ignored, as it would have been without us.
            return;
        }
        // SAFETY: resetting a signal disposition; re-raising a signal (both async-signal-safe).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
            if sent {
                // Returning would not send it again: send it again, to the default action.
                let mut unblock: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut unblock);
                libc::sigaddset(&mut unblock, sig);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &unblock, std::ptr::null_mut());
                libc::raise(sig);
            }
        }
        // A fault: returning retries the access, which faults again and the process ends
        // as it would have without us (with a core where enabled).
        return;
    }
    // SAFETY: an all-zero sigset_t is a valid (empty) set, filled in below.
    let mut prev: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: adding to a copy of the previous handler's mask and blocking it during the call,
    // as the kernel would have (restored below).
    unsafe {
        let mut mask = old.sa_mask;
        if old.sa_flags & libc::SA_NODEFER == 0 {
            libc::sigaddset(&mut mask, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &mask, &mut prev);
    }
    if old.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO: this is its signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain handler takes only the signal number.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
    // SAFETY: restoring the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &prev, std::ptr::null_mut()) };
}

/// The table's write lock, held across `fork` (`engine/fork.rs`).
pub(crate) fn fork_lock() -> std::sync::MutexGuard<'static, ()> {
    TABLE_WRITE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The allocations the table lists (for the fork machinery: an allocation being released may
/// be listed here after it left the index).
pub(crate) fn listed() -> crate::os::linux::metaheap::MetaVec<Arc<Allocation>> {
    let mut out = crate::os::linux::metaheap::MetaVec::new_in(crate::os::linux::metaheap::Meta);
    if let Some(t) = TABLE.get() {
        t.read(|v| v.for_each(|a| out.push(a.clone())));
    }
    out
}

/// For `fork`, with the table's write lock (`_w`) and every operation guard held: lists the
/// fault-driven allocations of `index` that a reserving call inserted but has not listed yet
/// (what that call is about to do), so the child's table covers its whole index.
pub(crate) fn fork_complete<'a>(
    _w: &std::sync::MutexGuard<'static, ()>,
    index: impl Iterator<Item = &'a Arc<Allocation>>,
) {
    let mut missing = crate::os::linux::metaheap::MetaVec::new_in(crate::os::linux::metaheap::Meta);
    {
        let listed = listed();
        missing.extend(
            index.filter(|a| a.fault_driven() && !listed.iter().any(|l| Arc::ptr_eq(l, a))),
        );
    }
    if missing.is_empty() {
        return;
    }
    install();
    let t = table();
    let mut v = t.read(|v| v.clone());
    for a in missing {
        v = v.insert(a.base, a.clone());
    }
    t.publish(v);
}

/// In a forked child, once the fork machinery has released every lock: unlists the
/// allocations that no longer own their pages. Such an entry is a release (or split) that
/// another thread of the parent was making when it forked: that thread does not exist here,
/// so the allocation's operation and handler locks stay taken for ever, and the next `fork`'s
/// prepare — which waits for every listed allocation — would wait for them. Its pages are not
/// ours any more either way.
pub(crate) fn fork_child_prune() {
    let Some(t) = TABLE.get() else { return };
    let _w = TABLE_WRITE.lock().unwrap_or_else(|e| e.into_inner());
    let mut v = t.read(|v| v.clone());
    let mut dead = crate::os::linux::metaheap::MetaVec::new_in(crate::os::linux::metaheap::Meta);
    v.for_each(|a| {
        if !a.is_live() {
            dead.push(a.base);
        }
    });
    if dead.is_empty() {
        return;
    }
    for base in dead {
        if let Some((rest, _)) = v.remove(base) {
            v = rest;
        }
    }
    t.publish(v);
}

/// In a forked child: the inherited /proc/self/maps descriptor describes the parent's address
/// space; open the child's own for the handler and close the parent's. Async-signal-safe
/// (`open`, `close`, atomics); keeps errno.
pub(crate) fn fork_child_reopen_maps() {
    if MAPS_FD.load(Ordering::SeqCst) < 0 {
        return;
    }
    // SAFETY: reading errno's thread-local location and restoring it.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: opening a procfs file; the descriptor is kept for the process's lifetime.
    let fd = unsafe {
        libc::open(
            c"/proc/self/maps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    // With -1 the handler falls back to probing readability, which is right in any process.
    let old = MAPS_FD.swap(fd, Ordering::SeqCst);
    if old >= 0 {
        // SAFETY: the parent's descriptor, ours to close in this process (the parent keeps
        // its own).
        unsafe { libc::close(old) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Whether the handler is installed (for tests).
#[cfg(any(test, feature = "internals"))]
pub fn handler_installed() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::consts::PAGE_READWRITE;

    const PS: usize = 4096;

    /// An allocation at an address nothing is mapped at: the paths tested here must not
    /// touch its pages.
    fn fake(initial: PageState) -> Allocation {
        Allocation::new(
            0x7000_0000_0000,
            4 * PS,
            PS,
            PAGE_READWRITE | PAGE_GUARD,
            0,
            u64::MAX,
            None,
            initial,
        )
    }

    #[test]
    fn a_dead_allocation_is_left_alone() {
        let a = fake(PageState::committed(PAGE_READWRITE | PAGE_GUARD));
        let g = a.begin().expect("live");
        a.set_live(false);
        drop(g);
        let out = decide(&a, a.base + PS + 5, Access::Write);
        assert!(matches!(out, Outcome::Retry { .. }));
    }

    #[test]
    fn a_fault_inside_our_own_operation_does_not_wait_for_itself() {
        let a = fake(PageState::RESERVED);
        let _g = a.begin().expect("live");
        // The lock is ours: the handler goes on without it (a reserved page is not ours to
        // handle), and leaves it held.
        assert!(matches!(decide(&a, a.base, Access::Read), Outcome::NotOurs));
        assert!(!a.handler_lock(), "still held by this thread");
    }

    #[test]
    fn retries_in_one_state_are_bounded_and_a_new_state_starts_over() {
        // A token no real thread here has (slot collisions only reset counts).
        let tid = usize::MAX - 7;
        let key = 0xfeed;
        for _ in 0..MAX_RETRIES {
            assert!(note_retry(tid, key));
        }
        assert!(!note_retry(tid, key), "the bound");
        assert!(note_retry(tid, key), "the slot starts over after the bound");
        for _ in 0..MAX_RETRIES - 1 {
            assert!(note_retry(tid, key));
        }
        assert!(note_retry(tid, key + 1), "another state: counted afresh");
        for _ in 0..MAX_RETRIES - 1 {
            assert!(note_retry(tid, key + 1));
        }
        assert!(!note_retry(tid, key + 1));
    }

    #[test]
    fn the_probe_tells_inaccessible_from_readable_and_knows_it_is_not_exact() {
        let none = rustix::mm::ProtFlags::empty();
        // SAFETY: a fresh anonymous mapping of ours, unmapped below.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                2 * PS,
                none,
                rustix::mm::MapFlags::PRIVATE,
            )
        }
        .unwrap() as usize;
        // SAFETY: changing the protection of the mapping made above.
        unsafe {
            rustix::mm::mprotect((p + PS) as *mut c_void, PS, rustix::mm::MprotectFlags::READ)
        }
        .unwrap();
        let was = NO_PROCMAP_QUERY.swap(true, Ordering::SeqCst);
        let (a, b) = (kernel_prot_now(p), kernel_prot_now(p + PS));
        NO_PROCMAP_QUERY.store(was, Ordering::SeqCst);
        assert!(!a.exact && !a.prot.any());
        assert!(!b.exact && b.prot.read());
        assert!(!a.may_permit(Access::Write));
        assert!(
            b.may_permit(Access::Write),
            "unknown: the retry bound decides"
        );
        // SAFETY: unmapping the mapping made above.
        unsafe { rustix::mm::munmap(p as *mut c_void, 2 * PS) }.unwrap();
    }
}
