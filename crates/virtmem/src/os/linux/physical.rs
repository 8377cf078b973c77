//! The physical-page store of AWE: one memfd per backend instance (so per `Space`: two spaces
//! never share frames). Physical page `n` is the file's page `n`; mapping it
//! (`MAP_SHARED|MAP_FIXED`) at a window address keeps its contents when it moves to another
//! address. Discarding punches a hole (the memory goes back; the page reads as zero when handed
//! out again).
//!
//! After `fork` the child inherits the memfd and the shared window mappings: parent and child
//! would see each other's writes. The fork machinery (`engine/fork.rs`) therefore gives the
//! child a copy of its own ([`privatize`]).

use super::err;
use crate::os::{OsError, OsErrorKind, Syscall};
use rustix::fs::{FallocateFlags, MemfdFlags, SeekFrom};
use rustix::io::Errno;
use rustix::mm::{self, MapFlags, ProtFlags};
use std::ffi::c_void;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

/// The store of one backend: created on first use.
#[derive(Debug, Default)]
pub(crate) struct Store {
    file: Mutex<Option<StoreFile>>,
}

/// The memfd and its size in pages.
#[derive(Debug)]
pub(crate) struct StoreFile {
    fd: OwnedFd,
    pages: usize,
}

fn perr(e: Errno) -> OsError {
    let kind = match e {
        Errno::NOMEM | Errno::NOSPC => OsErrorKind::CommitLimit,
        _ => OsErrorKind::Other,
    };
    err(Syscall::Physical, e, kind)
}

fn new_memfd() -> Result<OwnedFd, Errno> {
    rustix::fs::memfd_create("virtmem-awe", MemfdFlags::CLOEXEC)
}

impl Store {
    /// The store's lock (held across `fork` by the fork machinery).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<StoreFile>> {
        self.file.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn reserve(&self, pages: usize, page: usize) -> Result<(), OsError> {
        let mut g = self.lock();
        if g.is_none() {
            *g = Some(StoreFile {
                fd: new_memfd().map_err(perr)?,
                pages: 0,
            });
        }
        let f = g.as_mut().expect("just created");
        if pages > f.pages {
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
            rustix::fs::ftruncate(&f.fd, (pages * page) as u64).map_err(perr)?;
            f.pages = pages;
        }
        Ok(())
    }

    pub(crate) fn map(
        &self,
        addr: usize,
        first: usize,
        count: usize,
        prot: ProtFlags,
        page: usize,
    ) -> Result<(), OsError> {
        let g = self.lock();
        let Some(f) = g.as_ref() else {
            return Err(err(Syscall::Physical, Errno::BADF, OsErrorKind::Other));
        };
        map_fixed(&f.fd, addr, first, count, prot, page).map_err(|e| {
            let kind = if e == Errno::NOMEM {
                OsErrorKind::MapCountLimit
            } else {
                OsErrorKind::Other
            };
            err(Syscall::Physical, e, kind)
        })
    }

    pub(crate) fn discard(&self, first: usize, count: usize, page: usize) -> Result<(), OsError> {
        let g = self.lock();
        let Some(f) = g.as_ref() else {
            return Ok(());
        };
        rustix::fs::fallocate(
            &f.fd,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            (first * page) as u64,
            (count * page) as u64,
        )
        .map_err(perr)
    }
}

/// `MAP_SHARED|MAP_FIXED` of store pages `[first, first+count)` at `addr`.
fn map_fixed(
    fd: &OwnedFd,
    addr: usize,
    first: usize,
    count: usize,
    prot: ProtFlags,
    page: usize,
) -> Result<(), Errno> {
    // SAFETY: MAP_FIXED over an AWE window the engine owns (it holds the window's lock, or —
    // after fork — every lock of the space).
    let p = unsafe {
        mm::mmap(
            addr as *mut c_void,
            count * page,
            prot,
            MapFlags::SHARED | MapFlags::FIXED,
            fd.as_fd(),
            (first * page) as u64,
        )
    }?;
    if p as usize != addr {
        return Err(Errno::INVAL);
    }
    Ok(())
}

/// Copies the data of `from` (`len` bytes) into `to`, skipping holes. Uses only system calls
/// (no allocation), so it can run in a forked child. Explicit offsets: the file positions,
/// shared with the parent, are not relied upon.
fn copy_data(from: &OwnedFd, to: &OwnedFd, len: u64) -> Result<(), Errno> {
    let mut at = 0u64;
    while at < len {
        let data = match rustix::fs::seek(from, SeekFrom::Data(at)) {
            Ok(d) => d,
            Err(Errno::NXIO) => return Ok(()),
            Err(e) => return Err(e),
        };
        let hole = rustix::fs::seek(from, SeekFrom::Hole(data))?.min(len);
        let (mut src, mut dst) = (data, data);
        while src < hole {
            let want = (hole - src) as usize;
            match rustix::fs::copy_file_range(from, Some(&mut src), to, Some(&mut dst), want) {
                Ok(0) => return Err(Errno::IO),
                Ok(_) | Err(Errno::INTR) => {}
                Err(Errno::XDEV | Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP) => {
                    copy_by_pread(from, to, &mut src, hole)?;
                    dst = src;
                }
                Err(e) => return Err(e),
            }
        }
        at = hole;
    }
    Ok(())
}

/// The fallback of [`copy_data`]: `pread` / `pwrite` through a stack buffer.
fn copy_by_pread(from: &OwnedFd, to: &OwnedFd, at: &mut u64, end: u64) -> Result<(), Errno> {
    let mut buf = [0u8; 4096];
    while *at < end {
        let want = ((end - *at) as usize).min(buf.len());
        let n = match rustix::io::pread(from, &mut buf[..want], *at) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        };
        let mut done = 0;
        while done < n {
            match rustix::io::pwrite(to, &buf[done..n], *at + done as u64) {
                Ok(0) => return Err(Errno::IO),
                Ok(w) => done += w,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e),
            }
        }
        *at += n as u64;
    }
    Ok(())
}

/// In a forked child: gives this process a store of its own. The contents are copied into a
/// new memfd and every mapped page — `(window address, store page, protection)` from `mapped`
/// — is mapped again from the copy, so parent and child never write each other's frames.
/// Only system calls, no allocation.
///
/// If that fails, the child fails closed: the mapped pages become inaccessible anonymous
/// memory and the store is dropped (its frames read as zero when mapped again); the parent's
/// frames are never written by the child either way.
pub(crate) fn privatize(
    slot: &mut Option<StoreFile>,
    page: usize,
    mapped: impl Iterator<Item = (usize, usize, ProtFlags)> + Clone,
) {
    let Some(old) = slot.as_ref() else { return };
    let fresh = (|| {
        let fd = new_memfd()?;
        let len = (old.pages * page) as u64;
        rustix::fs::ftruncate(&fd, len)?;
        copy_data(&old.fd, &fd, len)?;
        Ok::<_, Errno>(fd)
    })();
    match fresh {
        Ok(fd) => {
            for (addr, idx, prot) in mapped {
                if map_fixed(&fd, addr, idx, 1, prot, page).is_err() {
                    inaccessible(addr, page);
                }
            }
            let pages = old.pages;
            // The parent's descriptor is closed here, in the child only.
            *slot = Some(StoreFile { fd, pages });
        }
        Err(_) => {
            for (addr, _, _) in mapped {
                inaccessible(addr, page);
            }
            *slot = None;
        }
    }
}

/// Replaces one page by inaccessible private memory (never leaves it mapped to the parent's
/// frame).
fn inaccessible(addr: usize, page: usize) {
    // SAFETY: MAP_FIXED over a page of an AWE window of this (child) process.
    let _ = unsafe {
        mm::mmap_anonymous(
            addr as *mut c_void,
            page,
            ProtFlags::empty(),
            MapFlags::PRIVATE | MapFlags::FIXED,
        )
    };
}
