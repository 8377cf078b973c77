//! The physical-page store of AWE: one memfd per process. Physical page `n` is the file's
//! page `n`; mapping it (`MAP_SHARED|MAP_FIXED`) at a window address keeps its contents when
//! it moves to another address. Discarding punches a hole (the memory goes back; the page
//! reads as zero when handed out again).

use super::err;
use crate::os::{OsError, OsErrorKind, Syscall};
use rustix::fs::{FallocateFlags, MemfdFlags};
use rustix::io::Errno;
use rustix::mm::{self, MapFlags, ProtFlags};
use std::ffi::c_void;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

/// The store and its size in pages.
static STORE: Mutex<Option<(OwnedFd, usize)>> = Mutex::new(None);

fn perr(e: Errno) -> OsError {
    let kind = match e {
        Errno::NOMEM | Errno::NOSPC => OsErrorKind::CommitLimit,
        _ => OsErrorKind::Other,
    };
    err(Syscall::Physical, e, kind)
}

pub(crate) fn reserve(pages: usize, page: usize) -> Result<(), OsError> {
    let mut g = STORE.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        let fd = rustix::fs::memfd_create("virtmem-awe", MemfdFlags::CLOEXEC).map_err(perr)?;
        *g = Some((fd, 0));
    }
    let (fd, size) = g.as_mut().expect("just created");
    if pages > *size {
        // Never more physical pages than the machine has.
        // SAFETY: sysinfo fills the struct it is given.
        let ram = unsafe {
            let mut si: libc::sysinfo = std::mem::zeroed();
            libc::sysinfo(&mut si);
            (si.totalram as usize).saturating_mul(si.mem_unit as usize) / page
        };
        if pages > ram {
            return Err(perr(Errno::NOMEM));
        }
        rustix::fs::ftruncate(&*fd, (pages * page) as u64).map_err(perr)?;
        *size = pages;
    }
    Ok(())
}

pub(crate) fn map(
    addr: usize,
    first: usize,
    count: usize,
    prot: ProtFlags,
    page: usize,
) -> Result<(), OsError> {
    let g = STORE.lock().unwrap_or_else(|e| e.into_inner());
    let Some((fd, _)) = g.as_ref() else {
        return Err(err(Syscall::Physical, Errno::BADF, OsErrorKind::Other));
    };
    // SAFETY: MAP_FIXED over an AWE window the engine owns (it holds the window's lock).
    let p = unsafe {
        mm::mmap(
            addr as *mut c_void,
            count * page,
            prot,
            MapFlags::SHARED | MapFlags::FIXED,
            fd.as_fd(),
            (first * page) as u64,
        )
    }
    .map_err(|e| {
        let kind = if e == Errno::NOMEM {
            OsErrorKind::MapCountLimit
        } else {
            OsErrorKind::Other
        };
        err(Syscall::Physical, e, kind)
    })?;
    if p as usize != addr {
        return Err(err(Syscall::Physical, Errno::INVAL, OsErrorKind::Other));
    }
    Ok(())
}

pub(crate) fn discard(first: usize, count: usize, page: usize) -> Result<(), OsError> {
    let g = STORE.lock().unwrap_or_else(|e| e.into_inner());
    let Some((fd, _)) = g.as_ref() else {
        return Ok(());
    };
    rustix::fs::fallocate(
        fd,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        (first * page) as u64,
        (count * page) as u64,
    )
    .map_err(perr)
}
