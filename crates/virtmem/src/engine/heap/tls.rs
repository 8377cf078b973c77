//! Where a thread's heap state ([`Tls`]: its slot caches and its last heap) lives.
//!
//! On x86-64 Linux the block is a thread-local of the *initial-exec* model, declared in
//! assembly (`.tbss`) and found with one `GOTTPOFF` load plus the thread pointer (`%fs:0`):
//! two instructions, no call. A Rust `thread_local!` in a position-independent build uses the
//! general-dynamic model, which the compiler treats as a call to `__tls_get_addr` (even when
//! the linker later relaxes it), so every register the fast paths hold must be saved around
//! it; HeapAlloc and HeapFree then need a stack frame (measured: ~12 % of an alloc + free,
//! `docs/performance.md`). This is what glibc does for its own malloc cache. The block is
//! zero-initialised, which is [`Tls`]'s initial value (null pointers, zero counts, `false`).
//! A library using the initial-exec model takes a little of the static TLS space that glibc
//! reserves for `dlopen`ed libraries; the block is [`TLS_BYTES`] bytes.
//!
//! Elsewhere a `thread_local!` holds it.

use super::cache::Tls;

/// Size of the thread-local block.
pub(crate) const TLS_BYTES: usize = std::mem::size_of::<Tls>();

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod imp {
    use super::{Tls, TLS_BYTES};

    // The block: `TLS_BYTES` zero bytes of thread-local storage, aligned for `Tls`. The name
    // is hidden (never exported from a shared library) and carries the crate's version, so
    // two versions of virtmem linked into one program each have their own block.
    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".balign 64",
        concat!(".globl \"virtmem_heap_tls_", env!("CARGO_PKG_VERSION"), "\""),
        concat!(".hidden \"virtmem_heap_tls_", env!("CARGO_PKG_VERSION"), "\""),
        concat!(".type \"virtmem_heap_tls_", env!("CARGO_PKG_VERSION"), "\",@object"),
        concat!(".size \"virtmem_heap_tls_", env!("CARGO_PKG_VERSION"), "\", {size}"),
        concat!("\"virtmem_heap_tls_", env!("CARGO_PKG_VERSION"), "\":"),
        ".zero {size}",
        ".popsection",
        size = const TLS_BYTES,
    );

    const _: () = assert!(std::mem::align_of::<Tls>() <= 64);

    /// This thread's block.
    #[inline(always)]
    pub(crate) fn get() -> Option<*mut Tls> {
        let p: usize;
        // SAFETY: reads the block's offset from the GOT (an initial-exec TLS relocation the
        // linker and loader resolve) and adds the thread pointer, which `%fs:0` holds on
        // x86-64 (the ABI's self-pointer). Nothing is written; the result is the address of
        // this thread's block, valid for the thread's lifetime.
        unsafe {
            core::arch::asm!(
                concat!(
                    "mov {p}, qword ptr [rip + \"virtmem_heap_tls_",
                    env!("CARGO_PKG_VERSION"),
                    "\"@GOTTPOFF]"
                ),
                "add {p}, qword ptr fs:[0]",
                p = out(reg) p,
                options(pure, readonly, nostack),
            );
        }
        Some(p as *mut Tls)
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod imp {
    use super::Tls;
    use std::cell::UnsafeCell;

    thread_local! {
        static TLS: UnsafeCell<Tls> = const { UnsafeCell::new(Tls::EMPTY) };
    }

    /// This thread's block, or `None` while the thread-local is being torn down.
    #[inline(always)]
    pub(crate) fn get() -> Option<*mut Tls> {
        TLS.try_with(|t| t.get()).ok()
    }
}

pub(crate) use imp::get;
