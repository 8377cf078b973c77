//! Other processes: a process named by its pid, held so that a recycled pid is never taken
//! for it, and what the kernel lets us do with its memory.
//!
//! A [`HostProcess`] holds a *pidfd* (`pidfd_open`) and a descriptor of its `/proc/<pid>`
//! directory, opened after the pidfd and checked against it: while the pidfd says the process
//! has not exited, the pid cannot have been given to another process, so the directory is that
//! process's. Every file opened later through the directory (`maps`, `mem`) is bound to that
//! process for good (procfs refuses them once it is gone, even if its pid is reused). The one
//! pid-based call, `process_vm_readv`, is checked the same way after it ran: if the pidfd then
//! still says "running", the pid named our process during the whole call.
//!
//! Which memory call does what:
//!
//! | operation | kernel call | protections |
//! |---|---|---|
//! | read | `process_vm_readv` | the kernel's: an unreadable page ends the copy |
//! | write | `pwrite` on `/proc/<pid>/mem` (opened through the directory) | checked by the caller from the maps first; the kernel writes with `FOLL_FORCE`, so an executable read-only page takes the write (copy-on-write) as Windows' WriteProcessMemory makes such pages writable for the copy |
//! | query | `PROCMAP_QUERY` on `/proc/<pid>/maps` (its text on older kernels) | — |
//!
//! Permission: what `process_vm_readv` needs (`PTRACE_MODE_ATTACH_REALCREDS`) is asked of the
//! kernel itself, by a one-byte read at address 0 — refused with `EPERM` when the caller may
//! not trace the process, `EFAULT` (or success) when it may: the kernel's own answer, never an
//! approximation of its rules (uid, capabilities, Yama, LSMs, dumpability).

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags, CWD};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags};
use std::ffi::c_void;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;

use crate::os::KernelRegion;

/// Why a process could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// No running process has this pid (never was, has exited, or names a thread).
    NotFound,
    /// The kernel refused a descriptor (too many open files, ...).
    Os(Errno),
}

/// What the kernel says about tracing a process (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attach {
    /// The caller may read and write its memory.
    Allowed,
    /// The caller may not (`EPERM`).
    Denied,
    /// It has no address space (a kernel thread).
    NoAddressSpace,
    /// It exited meanwhile.
    Gone,
}

/// One other process (or this one, named by its pid).
#[derive(Debug)]
pub(crate) struct HostProcess {
    pid: i32,
    pidfd: OwnedFd,
    dir: OwnedFd,
    maps: OnceLock<OwnedFd>,
}

impl HostProcess {
    /// Opens process `pid`: its pidfd, then its `/proc` directory, then checks the pidfd
    /// still names a running process (so the directory is that process's).
    pub(crate) fn open(pid: u32) -> Result<HostProcess, OpenError> {
        let raw = i32::try_from(pid).map_err(|_| OpenError::NotFound)?;
        let Some(p) = Pid::from_raw(raw) else {
            return Err(OpenError::NotFound);
        };
        let pidfd = match rustix::process::pidfd_open(p, PidfdFlags::empty()) {
            Ok(fd) => fd,
            // ESRCH: no such process; EINVAL: a thread id, not a process.
            Err(Errno::SRCH) | Err(Errno::INVAL) => return Err(OpenError::NotFound),
            Err(e) => return Err(OpenError::Os(e)),
        };
        let path = format!("/proc/{raw}");
        let dir = match rustix::fs::openat(
            CWD,
            path.as_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::SRCH) => return Err(OpenError::NotFound),
            Err(e) => return Err(OpenError::Os(e)),
        };
        let p = HostProcess {
            pid: raw,
            pidfd,
            dir,
            maps: OnceLock::new(),
        };
        if !p.running() {
            return Err(OpenError::NotFound);
        }
        Ok(p)
    }

    /// The process's id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Whether the process has not exited (its pidfd is not readable yet). An exited process
    /// that was not reaped (a zombie) counts as exited: it has no memory any more.
    pub(crate) fn running(&self) -> bool {
        let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match rustix::event::poll(&mut fds, Some(&zero)) {
            Ok(0) => true,
            Ok(_) => !fds[0].revents().contains(PollFlags::IN),
            // EINTR cannot happen with a zero timeout; anything else: assume it is gone.
            Err(_) => false,
        }
    }

    /// Asks the kernel whether the caller may trace this process (what reading or writing
    /// its memory needs).
    pub(crate) fn attach(&self) -> Attach {
        let mut byte = 0u8;
        let r = read_from(self.pid, 0, std::ptr::addr_of_mut!(byte), 1);
        let verdict = match r {
            (_, None) | (_, Some(Errno::FAULT)) => Attach::Allowed,
            (_, Some(Errno::PERM)) | (_, Some(Errno::ACCESS)) => Attach::Denied,
            (_, Some(_)) => Attach::NoAddressSpace,
        };
        if self.running() {
            verdict
        } else {
            Attach::Gone
        }
    }

    /// Copies `len` bytes at `addr` in the process into `buf`: the bytes copied, and the
    /// errno that stopped the copy early (a partial copy ends at the first page the kernel
    /// refuses). `Some(ESRCH)` if the process exited (whatever was copied is then not
    /// trusted: the pid may have named another process).
    ///
    /// # Safety
    ///
    /// `buf` is valid for writes of `len` bytes (an unwritable byte only ends the copy).
    pub(crate) unsafe fn read(&self, addr: usize, buf: *mut u8, len: usize) -> (usize, Option<Errno>) {
        let r = read_from(self.pid, addr, buf, len);
        if self.running() {
            r
        } else {
            (0, Some(Errno::SRCH))
        }
    }

    /// Writes `len` bytes from `src` at `addr` in the process through its `/proc/<pid>/mem`
    /// (`FOLL_FORCE`: the caller checks protections first). Returns the bytes written and the
    /// errno that stopped the write early; `Some(ESRCH)` if the process is gone, `EACCES` /
    /// `EPERM` if the kernel refuses the file.
    ///
    /// # Safety
    ///
    /// `src` is valid for reads of `len` bytes.
    pub(crate) unsafe fn write(&self, addr: usize, src: *const u8, len: usize) -> (usize, Option<Errno>) {
        let mem = match rustix::fs::openat(&self.dir, "mem", OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return (0, Some(Errno::SRCH)),
            Err(e) => return (0, Some(e)),
        };
        // SAFETY: the caller passes `len` readable bytes at `src`.
        let data = unsafe { std::slice::from_raw_parts(src, len) };
        let mut done = 0;
        while done < len {
            match rustix::io::pwrite(&mem, &data[done..], (addr + done) as u64) {
                Ok(0) => {
                    // The address space is gone (the process exited).
                    return (done, Some(Errno::SRCH));
                }
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                Err(e) => return (done, Some(e)),
            }
        }
        (done, None)
    }

    /// Whether the process shares this process's address space (`kcmp(KCMP_VM)`: the same
    /// kernel `mm`), which a pid comparison cannot tell: a `vfork`/`CLONE_VM` child has a pid
    /// of its own and our memory, a `fork` child our pid's old name and a memory of its own.
    /// An error when the kernel cannot answer (no `kcmp`, refused) or the process is gone.
    pub(crate) fn shares_our_memory(&self) -> Result<bool, Errno> {
        const KCMP_VM: libc::c_long = 1;
        let me = rustix::process::getpid().as_raw_nonzero().get();
        // SAFETY: kcmp takes two pids, a type and two unused integers; it touches no memory
        // of ours (libc: rustix has no kcmp).
        let r = unsafe {
            libc::syscall(
                libc::SYS_kcmp,
                me as libc::c_long,
                self.pid as libc::c_long,
                KCMP_VM,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        };
        let answer = if r < 0 {
            Err(Errno::from_raw_os_error(
                std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::ENOSYS),
            ))
        } else {
            Ok(r == 0)
        };
        if self.running() {
            answer
        } else {
            Err(Errno::SRCH)
        }
    }

    /// What the process has at `addr` (see [`super::procmaps::kernel_region_in`]); `ESRCH`
    /// once it has exited, `EACCES` if the kernel refuses its maps.
    pub(crate) fn kernel_region(&self, addr: usize, top: usize) -> Result<KernelRegion, Errno> {
        let fd = match self.maps.get() {
            Some(fd) => fd,
            None => {
                let fd = match rustix::fs::openat(
                    &self.dir,
                    "maps",
                    OFlags::RDONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => return Err(Errno::SRCH),
                    Err(e) => return Err(e),
                };
                // Another thread may have cached one meanwhile: either serves.
                let _ = self.maps.set(fd);
                self.maps.get().expect("set above")
            }
        };
        let r = super::procmaps::kernel_region_in(fd.as_fd(), addr, top);
        if !self.running() {
            return Err(Errno::SRCH);
        }
        r
    }
}

/// Which way [`vm_copy`] copies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    /// `process_vm_readv`: from the remote range into the local one.
    Read,
    /// `process_vm_writev`: from the local range into the remote one.
    Write,
}

/// `process_vm_readv` / `process_vm_writev` of `len` bytes between `local` (this process) and
/// `remote` (in process `pid`), resumed after partial transfers and EINTR until the kernel
/// refuses a page: the bytes copied and the refusal. Never faults: the kernel checks both
/// ranges.
///
/// # Safety
///
/// For [`Way::Read`], `local` is `len` bytes the caller lets the call write; for
/// [`Way::Write`], `local` is `len` readable bytes, and when `pid` is this process, writing
/// `[remote, remote+len)` must not break what the program relies on.
unsafe fn vm_copy(pid: i32, way: Way, local: usize, remote: usize, len: usize) -> (usize, Option<Errno>) {
    let mut done = 0;
    while done < len {
        let l = libc::iovec {
            iov_base: local.wrapping_add(done) as *mut c_void,
            iov_len: len - done,
        };
        let r = libc::iovec {
            iov_base: remote.wrapping_add(done) as *mut c_void,
            iov_len: len - done,
        };
        // SAFETY: the kernel copies between the two ranges, checking both, and reports a
        // refusal instead of faulting; no Rust reference covers either side; the caller's
        // contract covers what is written (libc: these calls are not among rustix's).
        let n = unsafe {
            match way {
                Way::Read => libc::process_vm_readv(pid, &l, 1, &r, 1, 0),
                Way::Write => libc::process_vm_writev(pid, &l, 1, &r, 1, 0),
            }
        };
        if n < 0 {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EFAULT);
            if e == libc::EINTR {
                continue;
            }
            return (done, Some(Errno::from_raw_os_error(e)));
        }
        if n == 0 {
            return (done, Some(Errno::FAULT));
        }
        done += n as usize;
    }
    (done, None)
}

/// `process_vm_readv` of `len` bytes at `addr` in process `pid` into `buf`, resumed after
/// partial transfers until the kernel refuses a page: the bytes copied and the refusal.
fn read_from(pid: i32, addr: usize, buf: *mut u8, len: usize) -> (usize, Option<Errno>) {
    // SAFETY: the kernel writes `buf` only where it is writable memory of this process (an
    // unwritable one is refused, never faulted on); callers pass their own buffer for it.
    unsafe { vm_copy(pid, Way::Read, buf as usize, addr, len) }
}

/// `process_vm_writev` into this process: `len` bytes from `src` to `addr`, without ever
/// faulting (an unwritable page ends the copy). Returns the bytes written and the refusal.
///
/// # Safety
///
/// Writing `[addr, addr+len)` must not break what the caller's program relies on (it is this
/// process's memory); `src` is valid for reads of `len` bytes.
pub(crate) unsafe fn write_own(addr: usize, src: *const u8, len: usize) -> (usize, Option<Errno>) {
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    // SAFETY: the caller's contract.
    unsafe { vm_copy(pid, Way::Write, src as usize, addr, len) }
}

/// `process_vm_readv` from this process (never faults): the bytes copied and the refusal.
pub(crate) fn read_own(addr: usize, buf: *mut u8, len: usize) -> (usize, Option<Errno>) {
    read_from(rustix::process::getpid().as_raw_nonzero().get(), addr, buf, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_zero_and_absurd_pids_are_not_found() {
        assert_eq!(HostProcess::open(0).unwrap_err(), OpenError::NotFound);
        assert_eq!(HostProcess::open(u32::MAX).unwrap_err(), OpenError::NotFound);
        assert_eq!(HostProcess::open(0x3FFF_FFFF).unwrap_err(), OpenError::NotFound);
    }

    #[test]
    fn this_process_is_running_and_readable() {
        let me = HostProcess::open(std::process::id()).unwrap();
        assert!(me.running());
        assert_eq!(me.attach(), Attach::Allowed);
        assert_eq!(me.shares_our_memory(), Ok(true));
        let v = [1u8, 2, 3, 4];
        let mut out = [0u8; 4];
        // SAFETY: `out` is 4 writable bytes.
        let (n, e) = unsafe { me.read(v.as_ptr() as usize, out.as_mut_ptr(), 4) };
        assert_eq!((n, e, out), (4, None, v));
    }

    #[test]
    fn an_exited_child_is_gone() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let p = HostProcess::open(child.id()).unwrap();
        assert!(p.running());
        assert_eq!(p.shares_our_memory(), Ok(false));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!p.running());
        assert_eq!(p.attach(), Attach::Gone);
        assert_eq!(p.kernel_region(0x10000, 1 << 47).unwrap_err(), Errno::SRCH);
    }
}
