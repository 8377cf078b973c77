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
//! The handler only uses async-signal-safe operations: atomics, `mprotect`, `ioctl`, `write`,
//! `gettid`, `abort`.

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
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, Ordering};
use crate::os::linux::metaheap::MetaArc as Arc;
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
    /// The Windows ExceptionInformation[0] value.
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

/// The kernel's current protection of the page at `addr`, async-signal-safe: PROCMAP_QUERY
/// where the kernel has it, else a readability probe (`process_vm_readv` on ourselves), which
/// tells PROT_NONE from readable.
fn kernel_prot_now(addr: usize) -> HostProt {
    let fd = MAPS_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let mut q = ProcmapQuery {
            size: size_of::<ProcmapQuery>() as u64,
            query_addr: addr as u64,
            ..ProcmapQuery::default()
        };
        // SAFETY: PROCMAP_QUERY takes a pointer to `struct procmap_query` (no name or build-id
        // buffers requested: their sizes are 0).
        if unsafe { libc::ioctl(fd, PROCMAP_QUERY as libc::c_ulong, &mut q) } == 0 {
            return HostProt::new(
                q.vma_flags & 1 != 0,
                q.vma_flags & 2 != 0,
                q.vma_flags & 4 != 0,
            );
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
    if n == 1 {
        HostProt::READ
    } else {
        HostProt::NONE
    }
}

fn mprotect_page(addr: usize, len: usize, p: HostProt) -> bool {
    let f = crate::os::linux::prot_flags(p).bits() as libc::c_int;
    // SAFETY: changes the protection of a page of an allocation we own, under its lock.
    unsafe { libc::mprotect(addr as *mut c_void, len, f) == 0 }
}

/// What the handler decided.
enum Outcome {
    /// Not ours: chain.
    NotOurs,
    /// Recorded (a write-watch hit); retry the access.
    Retry,
    /// A guard page was consumed: raise the violation.
    Guard,
}

/// The decision for a fault at `addr` in allocation `a`. Async-signal-safe.
fn decide(a: &Allocation, addr: usize, access: Access) -> Outcome {
    let page = addr & !(a.page_size - 1);
    let idx = (page - a.base) / a.page_size;
    let locked = a.handler_lock(crate::engine::allocation_tid());
    let st: PageState = a.read(|t| t.run_at(idx).state);
    let permits = |p: HostProt| match access {
        Access::Read => p.read(),
        Access::Write => p.write(),
        Access::Execute => p.exec(),
    };
    let out = if !st.committed {
        Outcome::NotOurs
    } else if st.protect & PAGE_GUARD != 0 {
        // The runs may be stale (a guard is consumed by changing only the kernel's
        // protection): ask the kernel.
        let now = kernel_prot_now(page);
        if permits(now) {
            // Another thread consumed it between our fault and now.
            Outcome::Retry
        } else if effective_state(st, a.armed(), now).protect & PAGE_GUARD != 0 {
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
                Outcome::Guard
            } else {
                Outcome::NotOurs
            }
        } else {
            watch_hit(a, page, st, access)
        }
    } else if permits(kernel_prot(st, a.armed())) {
        // An operation on another thread made the access valid while we waited.
        Outcome::Retry
    } else {
        watch_hit(a, page, st, access)
    };
    if locked {
        a.handler_unlock();
    }
    out
}

/// A write to a clean page of a signal-watched allocation: record it by giving the page
/// its full protection (idempotent, so a write another thread already recorded is harmless).
fn watch_hit(a: &Allocation, page: usize, st: PageState, access: Access) -> Outcome {
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
        Outcome::Retry
    } else {
        Outcome::NotOurs
    }
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

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for SIGSEGV/SIGBUS.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    if sig == libc::SIGSEGV && code == SEGV_ACCERR {
        let outcome = TABLE.get().map_or(Outcome::NotOurs, |t| {
            t.read(|v| match v.floor(addr) {
                Some((_, a)) if addr < a.end() => decide(a, addr, access_kind(ctx)),
                _ => Outcome::NotOurs,
            })
        });
        match outcome {
            Outcome::Retry => return,
            Outcome::Guard => {
                let v = GuardViolation {
                    address: addr,
                    access: access_kind(ctx),
                };
                let h = GUARD_HANDLER.load(Ordering::SeqCst);
                // SAFETY: handlers are leaked, never freed, once stored.
                if !h.is_null() && unsafe { (**h)(&v) } {
                    return;
                }
                unhandled(addr);
            }
            Outcome::NotOurs => {}
        }
    }
    chain(sig, info, ctx);
}

/// Passes a fault that is not ours to the handler installed before ours.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let i = usize::from(sig == libc::SIGBUS);
    // SAFETY: OLD was filled before our handler was installed.
    let old = unsafe { (*OLD.0.get())[i].assume_init_ref() };
    let h = old.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Restore the default action and return: the access faults again and the process
        // ends as it would have without us.
        // SAFETY: resetting a signal disposition.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
        return;
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
