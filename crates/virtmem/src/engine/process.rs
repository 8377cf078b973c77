//! Process handles and other processes' memory: OpenProcess, the one resolution of a process
//! handle every `...Ex` function goes through ([`Space::resolve_process`]), and
//! ReadProcessMemory / WriteProcessMemory / VirtualQueryEx on this process or another one.
//!
//! A handle names a process by its pid (held by a pidfd, `os/linux/process.rs`). Whether that
//! process is *this* one is decided at each call, by comparing the pid with `getpid()`: a
//! handle to our own pid is this process (every `...Ex` function treats it like
//! `GetCurrentProcess()`, within its access mask), and in a `fork` child, which inherits the
//! handle table, the same handle names the parent — another process, as it should.
//!
//! This process's memory goes through the engine (its page state, VirtualProtect for
//! WriteProcessMemory's temporary write access); another process's through the kernel
//! (`process_vm_readv`, `/proc/<pid>/mem`, `/proc/<pid>/maps`), classified by the same
//! function as foreign mappings of this process ([`super::query::foreign_info`]).

use super::query::foreign_info;
use super::{MemoryInfo, Space, State};
use crate::error::{Error, Result};
use crate::os::linux::process::{self as host, Attach, HostProcess, OpenError};
use crate::os::linux::LinuxOs;
use crate::os::{KernelRegion, Os};
use crate::rules::process::{implied, needs_attach, requested, Need, UNPRIVILEGED};
use crate::vocab::consts::*;
use rustix::io::Errno;
use std::sync::Arc;

/// The process an operation acts on, as [`Space::resolve_process`] found it.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// This process (the pseudo-handle, or a handle to our own pid).
    Current,
    /// Another process.
    Other(Arc<HostProcess>),
}

impl Target {
    /// The target a held process names now: this process if its pid is ours.
    pub(crate) fn of(p: &Arc<HostProcess>) -> Target {
        if p.pid() == std::process::id() {
            Target::Current
        } else {
            Target::Other(p.clone())
        }
    }

    /// The target's pid.
    pub(crate) fn pid(&self) -> u32 {
        match self {
            Target::Current => std::process::id(),
            Target::Other(p) => p.pid(),
        }
    }
}

/// The error of an operation on a process that has exited since it was opened [ours: Windows
/// reports STATUS_PROCESS_IS_TERMINATING, which is ERROR_ACCESS_DENIED].
const GONE: Error = Error::AccessDenied("the process has exited");

/// Which kind of write a range of this process takes (WriteProcessMemory).
#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteKind {
    /// Writable as it is.
    Direct,
    /// PAGE_EXECUTE / PAGE_EXECUTE_READ: made writable for the copy, then restored.
    Exec,
}

impl<O: Os> Space<O> {
    /// OpenProcess: a handle to process `pid` with the rights `desired` asks for (see
    /// [`Space::open_host_process`]).
    pub(crate) fn open_process(&self, desired: u32, pid: u32) -> Result<usize> {
        let (p, access) = self.open_host_process(desired, pid)?;
        Ok(self.handles().insert(super::HandleEntry {
            object: super::HandleObject::Process(p),
            access,
        }))
    }

    /// Opens process `pid` and grants `desired`: pid 0 (Windows' System Idle Process), an
    /// unknown pid, a thread id or an exited process → ERROR_INVALID_PARAMETER; rights beyond
    /// [`UNPRIVILEGED`] on a process the kernel does not let us trace → ERROR_ACCESS_DENIED
    /// (with MAXIMUM_ALLOWED: only the unprivileged rights are granted).
    pub(crate) fn open_host_process(
        &self,
        desired: u32,
        pid: u32,
    ) -> Result<(Arc<HostProcess>, u32)> {
        if pid == 0 {
            return Err(Error::InvalidParameter("process id 0"));
        }
        let p = match HostProcess::open(pid) {
            Ok(p) => Arc::new(p),
            Err(OpenError::NotFound) => {
                return Err(Error::InvalidParameter("no running process has this id"))
            }
            Err(OpenError::Os(e)) if e == Errno::MFILE || e == Errno::NFILE => {
                return Err(Error::NoSystemResources("too many open files"))
            }
            Err(OpenError::Os(_)) => return Err(Error::AccessDenied("the kernel refused the process")),
        };
        let access = self.grant_process_access(&p, desired)?;
        Ok((p, access))
    }

    /// The access a handle to `p` gets when `desired` is asked for (OpenProcess,
    /// DuplicateHandle without DUPLICATE_SAME_ACCESS).
    pub(crate) fn grant_process_access(&self, p: &Arc<HostProcess>, desired: u32) -> Result<u32> {
        let r = requested(desired);
        if p.pid() == std::process::id() {
            return Ok(if r.maximum { PROCESS_ALL_ACCESS } else { r.rights });
        }
        if !r.maximum && !needs_attach(r.rights) {
            return Ok(r.rights);
        }
        match p.attach() {
            Attach::Allowed => Ok(if r.maximum { PROCESS_ALL_ACCESS } else { r.rights }),
            Attach::Gone => Err(Error::InvalidParameter("no running process has this id")),
            Attach::Denied | Attach::NoAddressSpace if r.maximum => {
                Ok(implied(r.rights & UNPRIVILEGED) | UNPRIVILEGED)
            }
            Attach::Denied => Err(Error::AccessDenied(
                "the kernel does not let this process trace that one",
            )),
            Attach::NoAddressSpace => Err(Error::AccessDenied("the process has no address space")),
        }
    }

    /// The one check of a process handle: `h` is the pseudo-handle (every right) or an open
    /// process handle whose access includes what `need` needs. Not a process handle (NULL,
    /// closed, a section or file) → ERROR_INVALID_HANDLE; missing rights →
    /// ERROR_ACCESS_DENIED.
    pub(crate) fn resolve_process(&self, h: usize, need: Need) -> Result<Target> {
        if h == CURRENT_PROCESS as usize {
            return Ok(Target::Current);
        }
        let entry = self.handles().get(h)?;
        let p = entry.process()?;
        if !need.allowed(entry.access) {
            return Err(Error::AccessDenied("the handle lacks the access right"));
        }
        Ok(Target::of(p))
    }
}

impl Space<LinuxOs> {
    /// ReadProcessMemory: copies `len` bytes at `addr` in `target` into `buf`. Returns the
    /// bytes copied and the outcome: a local buffer that cannot take the bytes →
    /// ERROR_NOACCESS with nothing counted; a source page that cannot be read ends the copy
    /// with ERROR_PARTIAL_COPY and the exact bytes copied before it (the Win32 face reports
    /// Windows' whole-chunk count, `rules::process::partial_copy_count`); a guard page of
    /// this process met there loses its guard, as Windows' copy takes the one-shot violation.
    ///
    /// # Safety
    ///
    /// `buf` is `len` bytes of this process that the caller lets the call write.
    pub(crate) unsafe fn read_process(
        &self,
        target: &Target,
        addr: usize,
        buf: *mut u8,
        len: usize,
    ) -> (usize, Result<()>) {
        if len == 0 {
            return (0, Ok(()));
        }
        if self.is_bad_range(buf as usize, len, true) {
            return (0, Err(Error::NoAccess("the buffer cannot be written")));
        }
        let (done, e) = match target {
            Target::Current => host::read_own(addr, buf, len),
            // SAFETY: `buf` was checked writable for `len` bytes; the caller lets us write it.
            Target::Other(p) => unsafe { p.read(addr, buf, len) },
        };
        match e {
            None => (done, Ok(())),
            Some(Errno::SRCH) if matches!(target, Target::Other(_)) => (0, Err(GONE)),
            Some(_) => {
                if let Target::Current = target {
                    // The probe consumes a guard page's guard, as the copy's touch would.
                    let _ = self.is_bad_range(addr.wrapping_add(done), 1, false);
                }
                (done, Err(Error::PartialCopy))
            }
        }
    }

    /// WriteProcessMemory: writes `len` bytes from `src` at `addr` in `target`. Every page of
    /// the range is checked first: committed and writable, or PAGE_EXECUTE(_READ) — made
    /// writable for the copy (this process: through VirtualProtect, then restored, and the
    /// instruction cache flushed; another process: the kernel's forced write, which gives
    /// the process a private copy of the page) — else ERROR_NOACCESS and nothing is written
    /// (read-only, no-access, guard, reserved, free pages). A local buffer that cannot be
    /// read → ERROR_NOACCESS. A page refused during the copy (it changed meanwhile; in this
    /// process, a clean page of a signal-watched write-watch region) ends it with
    /// ERROR_PARTIAL_COPY and the bytes written. The count is `None` when the target range
    /// was refused before anything was written (Windows then leaves the caller's count as it
    /// was); a local buffer's failure counts 0.
    ///
    /// # Safety
    ///
    /// For this process: writing `[addr, addr+len)` must not break what the program relies
    /// on. `src` is `len` bytes the caller lets the call read.
    pub(crate) unsafe fn write_process(
        &self,
        target: &Target,
        addr: usize,
        src: *const u8,
        len: usize,
    ) -> (Option<usize>, Result<()>) {
        if len == 0 {
            return (Some(0), Ok(()));
        }
        if self.is_bad_range(src as usize, len, false) {
            return (Some(0), Err(Error::NoAccess("the buffer cannot be read")));
        }
        let Some(end) = addr.checked_add(len) else {
            return (None, Err(Error::NoAccess("the range wraps around")));
        };
        let spans = match self.write_spans(target, addr, end) {
            Ok(s) => s,
            Err(e) => return (None, Err(e)),
        };
        let (done, r) = match target {
            // SAFETY: the caller's contract.
            Target::Current => unsafe { self.write_own_spans(&spans, addr, src) },
            Target::Other(p) => {
                // SAFETY: `src` holds `len` readable bytes (checked above).
                let (done, e) = unsafe { p.write(addr, src, len) };
                match e {
                    None => (done, Ok(())),
                    Some(Errno::SRCH) => (done, Err(GONE)),
                    Some(Errno::ACCESS) | Some(Errno::PERM) => (
                        0,
                        Err(Error::AccessDenied("the kernel refused the process's memory")),
                    ),
                    Some(_) => (done, Err(Error::PartialCopy)),
                }
            }
        };
        (Some(done), r)
    }

    /// NtWriteVirtualMemory: writes `len` bytes from `src` at `addr` in `target` without
    /// changing any protection (the kernel32 function's PAGE_EXECUTE handling is not the NT
    /// call's): the copy runs up to the first page that is not committed and writable, and
    /// stops there with ERROR_PARTIAL_COPY and the bytes written. A local buffer that cannot be
    /// read → ERROR_NOACCESS, 0 bytes.
    ///
    /// # Safety
    ///
    /// As [`Space::write_process`].
    pub(crate) unsafe fn write_process_plain(
        &self,
        target: &Target,
        addr: usize,
        src: *const u8,
        len: usize,
    ) -> (usize, Result<()>) {
        if len == 0 {
            return (0, Ok(()));
        }
        if self.is_bad_range(src as usize, len, false) {
            return (0, Err(Error::NoAccess("the buffer cannot be read")));
        }
        let end = addr.saturating_add(len);
        // The writable prefix: committed pages with a writable protection.
        let mut stop = addr;
        while stop < end {
            let Ok(info) = self.query_process(target, stop) else {
                break;
            };
            let writable = info.state == State::Commit
                && matches!(
                    info.protect & !(PAGE_NOCACHE | PAGE_WRITECOMBINE),
                    PAGE_READWRITE | PAGE_WRITECOPY | PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY
                );
            let region_end = info.base_address.saturating_add(info.region_size);
            if !writable || region_end <= stop {
                break;
            }
            stop = region_end.min(end);
        }
        let n = stop - addr;
        let (done, e) = match target {
            // SAFETY: `src` holds `n` readable bytes (checked above); the caller vouches for
            // the destination.
            Target::Current => unsafe { host::write_own(addr, src, n) },
            // SAFETY: as above.
            Target::Other(p) => unsafe { p.write(addr, src, n) },
        };
        match e {
            Some(Errno::SRCH) if matches!(target, Target::Other(_)) => (0, Err(GONE)),
            Some(Errno::ACCESS) | Some(Errno::PERM) => (
                0,
                Err(Error::AccessDenied("the kernel refused the process's memory")),
            ),
            Some(_) => (done, Err(Error::PartialCopy)),
            None if done < len => (done, Err(Error::PartialCopy)),
            None => (done, Ok(())),
        }
    }

    /// The ranges of `[addr, end)` with the kind of write each takes, or ERROR_NOACCESS if a
    /// page cannot be written at all.
    fn write_spans(&self, target: &Target, addr: usize, end: usize) -> Result<Vec<(usize, usize, WriteKind)>> {
        let mut spans = Vec::new();
        let mut at = addr;
        while at < end {
            let info = self
                .query_process(target, at)
                .map_err(|e| if e == GONE { e } else { Error::NoAccess("the range leaves user space") })?;
            let region_end = info.base_address.saturating_add(info.region_size);
            let kind = match (info.state, info.protect & !(PAGE_NOCACHE | PAGE_WRITECOMBINE)) {
                (State::Commit, PAGE_READWRITE | PAGE_WRITECOPY | PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY) => {
                    WriteKind::Direct
                }
                (State::Commit, PAGE_EXECUTE | PAGE_EXECUTE_READ) => WriteKind::Exec,
                _ => return Err(Error::NoAccess("a page of the range cannot be written")),
            };
            let stop = region_end.min(end);
            if stop <= at {
                return Err(Error::NoAccess("a page of the range cannot be written"));
            }
            spans.push((at, stop, kind));
            at = stop;
        }
        Ok(spans)
    }

    /// Writes the spans of this process in order (see [`Space::write_process`]).
    ///
    /// # Safety
    ///
    /// As [`Space::write_process`]; `src` holds the bytes of `[spans[0].0, last end)`.
    unsafe fn write_own_spans(
        &self,
        spans: &[(usize, usize, WriteKind)],
        addr: usize,
        src: *const u8,
    ) -> (usize, Result<()>) {
        let mut done = 0;
        for &(start, stop, kind) in spans {
            let from = src.wrapping_add(start - addr);
            let n = stop - start;
            let restore = if kind == WriteKind::Exec {
                // EXECUTE_WRITECOPY where the view cannot be made read-write (Windows gives
                // image pages a private copy the same way).
                match self
                    .virtual_protect(start, n, PAGE_EXECUTE_READWRITE)
                    .or_else(|_| self.virtual_protect(start, n, PAGE_EXECUTE_WRITECOPY))
                {
                    Ok(old) => Some(old),
                    Err(_) => return (done, Err(Error::NoAccess("the page cannot be made writable"))),
                }
            } else {
                None
            };
            // SAFETY: `from` holds `n` readable bytes; the caller vouches for the destination.
            let (w, e) = unsafe { host::write_own(start, from, n) };
            if let Some(old) = restore {
                let _ = self.virtual_protect(start, n, old);
                self.os().flush_instruction_cache(start, n);
            }
            done += w;
            if e.is_some() {
                return (done, Err(Error::PartialCopy));
            }
        }
        (done, Ok(()))
    }

    /// VirtualQueryEx: the region containing `addr` in `target` — this process as
    /// VirtualQuery describes it; another one as the kernel knows it (committed mappings with
    /// their protections, private / mapped / image, free gaps), classified as VirtualQuery
    /// classifies memory it did not allocate. An address above user space →
    /// ERROR_INVALID_PARAMETER.
    pub(crate) fn query_process(&self, target: &Target, addr: usize) -> Result<MemoryInfo> {
        match target {
            Target::Current => self.query(addr),
            Target::Other(p) => {
                if addr > self.layout.max_address {
                    return Err(Error::InvalidParameter("address above user space"));
                }
                let page = self.layout.page_floor(addr);
                let top = self.layout.max_address + 1;
                let region: KernelRegion = match p.kernel_region(page, top) {
                    Ok(r) => r,
                    Err(Errno::SRCH) => return Err(GONE),
                    Err(_) => return Err(Error::AccessDenied("the kernel refused the process's maps")),
                };
                Ok(foreign_info(page, region, 0, usize::MAX, top))
            }
        }
    }
}
