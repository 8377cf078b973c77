//! Sections on Linux (`sections.md` §18): a pagefile-backed section is a memfd, a file-backed
//! one the file's own descriptor (opened anew for the section); a view is `mmap` of that
//! descriptor — `MAP_SHARED`, or `MAP_PRIVATE` for copy-on-write — over address space this
//! backend reserved first, so views are placed by the same rules as allocations.
//!
//! | request | kernel call |
//! |---|---|
//! | new pagefile section | `memfd_create` (`MFD_HUGETLB` for large pages) + `ftruncate` |
//! | SEC_RESERVE commit | `fallocate` (the pages then exist, in every process's view) |
//! | committed? | `lseek(SEEK_DATA / SEEK_HOLE)` (async-signal-safe) |
//! | view | `mmap(PROT_NONE)` reservation, then `mmap(MAP_FIXED, fd, offset)` over it |
//! | copied page? | `/proc/self/pagemap`: present and not file-backed, or swapped |
//! | FlushViewOfFile | `msync(MS_SYNC)` |

use super::{err, prot_flags, LinuxOs};
use crate::os::{BackingId, HostProt, Os, OsError, OsErrorKind, Placement, Syscall, ViewMap};
use rustix::fs::{FallocateFlags, MemfdFlags, SeekFrom};
use rustix::io::Errno;
use rustix::mm::{self, MapFlags, MsyncFlags};
use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;
const PM_FILE: u64 = 1 << 61;

fn serr(e: Errno) -> OsError {
    let kind = match e {
        Errno::NOSPC | Errno::FBIG => OsErrorKind::NoSpace,
        Errno::NOMEM => OsErrorKind::CommitLimit,
        Errno::MFILE | Errno::NFILE => OsErrorKind::Other,
        _ => OsErrorKind::Other,
    };
    err(Syscall::Section, e, kind)
}

/// The descriptor a backing id names.
fn fd(b: BackingId) -> BorrowedFd<'static> {
    // SAFETY: a backing id is a descriptor this backend owns until `backing_close`; the
    // engine never uses an id after closing it.
    unsafe { BorrowedFd::borrow_raw(b.0 as i32) }
}

fn map_flags(private: bool) -> MapFlags {
    if private {
        MapFlags::PRIVATE
    } else {
        MapFlags::SHARED
    }
}

impl LinuxOs {
    /// mmap of a view at `[addr, addr+len)` only if nothing is mapped there
    /// (`MAP_FIXED_NOREPLACE`; a kernel that treats it as a hint gets its mapping back).
    fn map_noreplace_view(&self, addr: usize, len: usize, m: ViewMap) -> Result<(), Errno> {
        // SAFETY: MAP_FIXED_NOREPLACE never replaces a mapping.
        let p = unsafe {
            mm::mmap(
                addr as *mut c_void,
                len,
                prot_flags(m.prot),
                map_flags(m.private) | MapFlags::FIXED_NOREPLACE,
                fd(m.backing),
                m.offset,
            )?
        } as usize;
        if p != addr {
            // SAFETY: the mapping just made, somewhere else, known to nobody.
            let _ = unsafe { mm::munmap(p as *mut c_void, len) };
            return Err(Errno::EXIST);
        }
        Ok(())
    }

    /// mmap of a view over `[addr, addr+len)` (memory the caller owns).
    fn map_fixed_view(&self, addr: usize, len: usize, m: ViewMap) -> Result<(), Errno> {
        // SAFETY: MAP_FIXED replaces only [addr, addr+len), which the caller owns (a
        // reservation this backend just made, a placeholder, or pages of the caller's view).
        let p = unsafe {
            mm::mmap(
                addr as *mut c_void,
                len,
                prot_flags(m.prot),
                map_flags(m.private) | MapFlags::FIXED,
                fd(m.backing),
                m.offset,
            )?
        };
        debug_assert_eq!(p as usize, addr);
        Ok(())
    }

    /// Whether a commit of `size` bytes would be refused by the kernel's overcommit policy:
    /// asked of the kernel itself with a private writable mapping of that size (never
    /// touched). Sizes below 1/16 of RAM are not asked about (no policy refuses them).
    fn commit_refused(&self, size: u64) -> bool {
        let ram = super::sysfacts::physical_memory();
        if ram != 0 && size < ram / 16 {
            return false;
        }
        let Ok(len) = usize::try_from(size) else {
            return true;
        };
        match self.mmap(0, len, HostProt::READ_WRITE, false) {
            Ok(p) => {
                let _ = self.munmap(p, len);
                false
            }
            Err(_) => true,
        }
    }
}

/// The section methods of the Linux backend.
pub(super) fn backing_new(
    os: &LinuxOs,
    size: u64,
    large_page: Option<usize>,
    charge: bool,
) -> Result<BackingId, OsError> {
    if charge && large_page.is_none() && os.commit_refused(size) {
        return Err(err(Syscall::Section, Errno::NOMEM, OsErrorKind::CommitLimit));
    }
    let mut flags = MemfdFlags::CLOEXEC;
    if let Some(lp) = large_page {
        flags |= MemfdFlags::HUGETLB;
        flags |= match lp {
            0x4000_0000 => MemfdFlags::HUGE_1GB,
            _ => MemfdFlags::HUGE_2MB,
        };
    }
    let f = rustix::fs::memfd_create("virtmem-section", flags).map_err(|e| {
        let kind = match e {
            Errno::PERM | Errno::ACCESS => OsErrorKind::LockQuota,
            _ => OsErrorKind::Other,
        };
        err(Syscall::Section, e, kind)
    })?;
    rustix::fs::ftruncate(&f, size).map_err(serr)?;
    if large_page.is_some() {
        // Huge pages are taken from the pool now, as Windows commits large-page sections
        // at once: a pool too small fails here, not with SIGBUS later.
        if let Err(e) = rustix::fs::fallocate(&f, FallocateFlags::empty(), 0, size) {
            return Err(err(Syscall::Section, e, OsErrorKind::Other));
        }
    }
    Ok(BackingId(f.into_raw_fd() as u64))
}

/// Marks a backing id whose descriptor was handed in (a file, a named object): only those
/// can hold a file section's lock. The descriptor is the low 32 bits.
const ADOPTED: u64 = 1 << 32;

pub(super) fn backing_adopt_fd(fd: i32) -> BackingId {
    BackingId(fd as u32 as u64 | ADOPTED)
}

pub(super) fn backing_close(b: BackingId) {
    if b.0 & ADOPTED != 0 {
        // A file section's read lock (the one that keeps the file from shrinking) belongs to
        // the open file description, which a process forked meanwhile shares until it execs
        // or exits: release the lock itself, so the file can shrink as soon as the section is
        // gone. (A memfd of our own never holds one: no system call for it.)
        // SAFETY: a zeroed flock is a valid value; l_type is set below.
        let mut l: libc::flock = unsafe { std::mem::zeroed() };
        l.l_type = libc::F_UNLCK as i16;
        l.l_whence = libc::SEEK_SET as i16;
        // SAFETY: F_OFD_SETLK with a valid flock on a descriptor this backend owns.
        unsafe { libc::fcntl(b.0 as i32, libc::F_OFD_SETLK, &l) };
    }
    // SAFETY: the id is a descriptor this backend owns; closing it ends that ownership.
    drop(unsafe { OwnedFd::from_raw_fd(b.0 as i32) });
}

pub(super) fn backing_size(b: BackingId) -> Result<u64, OsError> {
    rustix::fs::fstat(fd(b)).map(|s| s.st_size as u64).map_err(serr)
}

pub(super) fn backing_set_size(b: BackingId, size: u64) -> Result<(), OsError> {
    rustix::fs::ftruncate(fd(b), size).map_err(serr)
}

pub(super) fn backing_allocate(b: BackingId, offset: u64, len: u64) -> Result<(), OsError> {
    rustix::fs::fallocate(fd(b), FallocateFlags::empty(), offset, len).map_err(|e| {
        // A memfd out of memory reports ENOSPC / ENOMEM: the commit charge was refused.
        let kind = match e {
            Errno::NOSPC | Errno::NOMEM => OsErrorKind::CommitLimit,
            _ => OsErrorKind::Other,
        };
        err(Syscall::Section, e, kind)
    })?;
    // shmem reports fallocated pages as holes until they are first faulted in (a fault zeroes
    // a fallocated page that nobody wrote and marks it up to date; it never clears written
    // data). Fault them in through a short-lived read-only mapping, so `SEEK_DATA` — which
    // every view in every process reads — sees the commit.
    let n = usize::try_from(len).map_err(|_| err(Syscall::Section, Errno::NOMEM, OsErrorKind::Other))?;
    // SAFETY: a fresh shared read-only mapping chosen by the kernel (no MAP_FIXED): it
    // replaces nothing, and is unmapped below.
    let p = unsafe {
        mm::mmap(
            std::ptr::null_mut(),
            n,
            rustix::mm::ProtFlags::READ,
            MapFlags::SHARED,
            fd(b),
            offset,
        )
    }
    .map_err(serr)?;
    // SAFETY: the advice only faults pages in, on the mapping just made.
    let populated = unsafe { mm::madvise(p, n, mm::Advice::LinuxPopulateRead) };
    if populated.is_err() {
        let page = rustix::param::page_size();
        for i in (0..n).step_by(page) {
            // SAFETY: inside the readable mapping just made.
            unsafe { std::ptr::read_volatile((p as *const u8).add(i)) };
        }
    }
    // SAFETY: the mapping made above, known to nobody else.
    let _ = unsafe { mm::munmap(p, n) };
    Ok(())
}

pub(super) fn backing_allocated(b: BackingId, offset: u64) -> Result<(bool, u64), OsError> {
    // SEEK_DATA from `offset`: the next allocated byte (ENXIO: none up to the end).
    match rustix::fs::seek(fd(b), SeekFrom::Data(offset)) {
        Ok(d) if d == offset => {
            let hole = rustix::fs::seek(fd(b), SeekFrom::Hole(offset)).map_err(serr)?;
            Ok((true, hole))
        }
        Ok(d) => Ok((false, d)),
        Err(Errno::NXIO) => Ok((false, u64::MAX)),
        Err(e) => Err(serr(e)),
    }
}

pub(super) fn map_view(
    os: &LinuxOs,
    placement: Placement,
    len: usize,
    m: ViewMap,
) -> Result<usize, OsError> {
    // One system call where it can be: the view mapped straight at a free address with
    // MAP_FIXED_NOREPLACE (a fixed placement, or just below the previous system-chosen
    // reservation, as `map` tries first).
    let direct = match placement {
        Placement::Fixed(addr) => Some(addr),
        Placement::Anywhere {
            align,
            lowest,
            highest_end,
        } => {
            let h = os.hint.load(std::sync::atomic::Ordering::Relaxed);
            h.checked_sub(len)
                .map(|c| c & !(align - 1))
                .filter(|&c| c >= lowest && c.checked_add(len).is_some_and(|e| e <= highest_end))
        }
        Placement::TopDown { .. } | Placement::BottomUp { .. } => None,
    };
    if let Some(addr) = direct {
        match os.map_noreplace_view(addr, len, m) {
            Ok(()) => {
                if !matches!(placement, Placement::Fixed(_)) {
                    os.hint.store(addr, std::sync::atomic::Ordering::Relaxed);
                }
                return Ok(addr);
            }
            Err(Errno::EXIST) if matches!(placement, Placement::Fixed(_)) => {
                return Err(err(Syscall::Map, Errno::EXIST, OsErrorKind::AddressInUse));
            }
            Err(e) if matches!(placement, Placement::Fixed(_)) => return Err(view_error(e)),
            Err(_) => {}
        }
    }
    let base = os.map(placement, len, HostProt::NONE)?;
    if let Err(e) = os.map_fixed_view(base, len, m) {
        let _ = os.munmap(base, len);
        return Err(view_error(e));
    }
    Ok(base)
}

/// The error of a failed view mapping.
fn view_error(e: Errno) -> OsError {
    let kind = match e {
        Errno::NOMEM => OsErrorKind::CommitLimit,
        Errno::ACCESS | Errno::PERM => OsErrorKind::LockQuota,
        Errno::EXIST => OsErrorKind::AddressInUse,
        _ => OsErrorKind::Other,
    };
    err(Syscall::Section, e, kind)
}

pub(super) fn remap_view(os: &LinuxOs, addr: usize, len: usize, m: ViewMap) -> Result<(), OsError> {
    os.map_fixed_view(addr, len, m).map_err(|e| {
        let kind = match e {
            Errno::NOMEM => OsErrorKind::CommitLimit,
            _ => OsErrorKind::Other,
        };
        err(Syscall::Section, e, kind)
    })
}

pub(super) fn copied(page: usize, addr: usize, len: usize, out: &mut [bool]) -> Result<(), OsError> {
    // The descriptor the rest of the backend caches (no open per query).
    let f = super::pagemap::PAGEMAP_FILE.get().map_err(serr)?;
    let f = f.as_fd();
    let mut buf = [0u8; 512 * 8];
    let first = (addr / page) as u64;
    let pages = len / page;
    let mut done = 0;
    while done < pages {
        let want = (pages - done).min(512) * 8;
        let got = rustix::io::pread(f, &mut buf[..want], (first + done as u64) * 8).map_err(serr)?;
        if got == 0 {
            break;
        }
        for (i, raw) in buf[..got / 8 * 8].chunks_exact(8).enumerate() {
            let e = u64::from_ne_bytes(raw.try_into().expect("8 bytes"));
            out[done + i] = (e & PM_PRESENT != 0 && e & PM_FILE == 0) || e & PM_SWAPPED != 0;
        }
        done += got / 8;
    }
    Ok(())
}

pub(super) fn flush_view(addr: usize, len: usize) -> Result<(), OsError> {
    // SAFETY: msync only writes dirty pages back; it changes no mapping or content.
    unsafe { mm::msync(addr as *mut c_void, len, MsyncFlags::SYNC) }.map_err(|e| {
        let kind = if e == Errno::NOMEM {
            OsErrorKind::NotMapped
        } else {
            OsErrorKind::Other
        };
        err(Syscall::Section, e, kind)
    })
}


/// Whether the file starts like a PE image ("MZ", and "PE\0\0" where its header says).
pub(crate) fn is_pe_image(fd: i32) -> bool {
    // SAFETY: the caller's descriptor stays open for the call.
    let f = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut dos = [0u8; 64];
    if !matches!(rustix::io::pread(f, &mut dos, 0), Ok(64)) || &dos[..2] != b"MZ" {
        return false;
    }
    let at = u32::from_le_bytes(dos[60..64].try_into().expect("4 bytes")) as u64;
    let mut sig = [0u8; 4];
    matches!(rustix::io::pread(f, &mut sig, at), Ok(4)) && &sig == b"PE\0\0"
}

/// Why [`open_file_for_section`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileOpen {
    /// The file is gone, or another file has its path now.
    Gone,
    /// A write lock on the file prevents the section's read lock.
    Locked,
}

/// Opens the file of a named file-backed section created by another process (its path),
/// checks that it is the same file (device and inode), and takes the read lock every
/// section of a file holds (`F_OFD_SETLK`, so the file cannot shrink under it).
pub(crate) fn open_file_for_section(
    path: &std::path::Path,
    dev: u64,
    ino: u64,
    writable: bool,
) -> Result<OwnedFd, FileOpen> {
    let mode = if writable {
        rustix::fs::OFlags::RDWR
    } else {
        rustix::fs::OFlags::RDONLY
    };
    let f = rustix::fs::open(path, mode | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
        .map_err(|_| FileOpen::Gone)?;
    let st = rustix::fs::fstat(&f).map_err(|_| FileOpen::Gone)?;
    if st.st_dev != dev || st.st_ino != ino {
        return Err(FileOpen::Gone);
    }
    if !ofd_read_lock(f.as_raw_fd()) {
        return Err(FileOpen::Locked);
    }
    Ok(f)
}

/// Takes an open-file-description read lock over the whole file; false if a write lock
/// prevents it.
pub(crate) fn ofd_read_lock(fd: i32) -> bool {
    // SAFETY: a zeroed flock is a valid value; the fields are set below.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = libc::F_RDLCK as i16;
    l.l_whence = libc::SEEK_SET as i16;
    // SAFETY: F_OFD_SETLK with a valid flock on a descriptor the caller owns.
    unsafe { libc::fcntl(fd, libc::F_OFD_SETLK, &l) == 0 }
}

/// Whether byte `offset` of a backing object is allocated (a committed page of a SEC_RESERVE
/// section). Only raw system calls: the fault handler calls it.
pub(crate) fn allocated_now(b: BackingId, offset: u64) -> bool {
    // SAFETY: lseek on a descriptor the backend owns; it changes only the descriptor's
    // position, which virtmem never uses for a backing object.
    let r = unsafe { libc::lseek(b.0 as i32, offset as libc::off_t, libc::SEEK_DATA) };
    r >= 0 && r as u64 == offset
}
