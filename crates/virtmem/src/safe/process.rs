//! [`Process`]: another process (or this one), its memory read, written and described.

use super::native;
use crate::engine::{MemoryInfo, Target};
use crate::error::{Error, Result};
use crate::os::linux::process::HostProcess;
use crate::rules::process::Need;
use crate::vocab::consts::*;
use std::sync::Arc;

/// A process, named by its Linux pid and held for as long as the value lives (a pidfd: a
/// recycled pid is never taken for it), with the access rights it was opened with — the
/// safe counterpart of an OpenProcess handle.
///
/// ```no_run
/// use virtmem::{win32::{PROCESS_VM_READ, PROCESS_QUERY_INFORMATION}, Process};
/// let p = Process::open(1234, PROCESS_VM_READ | PROCESS_QUERY_INFORMATION)?;
/// for r in p.regions().take(3) {
///     println!("{:#x} {:#x} {:?}", r.base_address, r.region_size, r.state);
/// }
/// let mut buf = [0u8; 16];
/// let n = p.read(0x400000, &mut buf)?; // n < 16: the copy stopped at an unreadable page
/// # let _ = n;
/// # Ok::<(), virtmem::Error>(())
/// ```
///
/// # Soundness
///
/// [`Process::read`] copies *into* a buffer the caller lends mutably, so it is safe on any
/// process, this one included. [`Process::write`] changes the target's memory, so safe code
/// may use it only where no borrow of this program can see the bytes: it refuses (with
/// ERROR_ACCESS_DENIED) whenever the target shares this process's address space — asked of
/// the kernel (`kcmp`), not guessed from pids, so a `fork` child writing to its parent is
/// allowed (another address space) while a `vfork`-style child sharing our memory, or our own
/// pid, is refused; if the kernel cannot answer, the write is refused too.
/// [`Process::write_unchecked`] writes anywhere, under an `unsafe` contract. A `fork`ed child
/// shares `MAP_SHARED` mappings with its parent (see [`crate::UniqueView`]): whoever forks
/// answers for the child's writes, through this type as through any other.
///
/// A `Process` may be used from several threads. In a `fork` child the value still names the
/// process it named in the parent ([`Process::current`] names whichever process uses it).
#[derive(Clone, Debug)]
pub struct Process {
    /// The process; `None` for [`Process::current`].
    host: Option<Arc<HostProcess>>,
    /// The access rights granted.
    access: u32,
}

impl Process {
    /// Opens process `pid` with `access` (`PROCESS_*` rights, `GENERIC_*`,
    /// `MAXIMUM_ALLOWED`; see [`crate::win32::OpenProcess`]). Pid 0 or an unknown pid →
    /// [`Error::InvalidParameter`]; a process whose memory the kernel does not let this one
    /// access → [`Error::AccessDenied`] (unless only PROCESS_QUERY_LIMITED_INFORMATION /
    /// SYNCHRONIZE are asked for).
    pub fn open(pid: u32, access: u32) -> Result<Process> {
        let (p, access) = native().open_host_process(access, pid)?;
        Ok(Process {
            host: Some(p),
            access,
        })
    }

    /// This process, with every right (what `GetCurrentProcess()` names).
    pub fn current() -> Process {
        Process {
            host: None,
            access: PROCESS_ALL_ACCESS,
        }
    }

    /// The process's id (its pid).
    pub fn id(&self) -> u32 {
        self.target().pid()
    }

    /// The access rights this value was granted.
    pub fn access(&self) -> u32 {
        self.access
    }

    fn target(&self) -> Target {
        match &self.host {
            None => Target::Current,
            Some(p) => Target::of(p),
        }
    }

    fn check(&self, need: Need) -> Result<Target> {
        if need.allowed(self.access) {
            Ok(self.target())
        } else {
            Err(Error::AccessDenied(
                "the process was opened without this right",
            ))
        }
    }

    /// Copies the process's bytes at `addr` into `buf` (PROCESS_VM_READ needed). Returns how
    /// many were copied: fewer than `buf.len()` when the copy reached a page that cannot be
    /// read (it is then at `addr + n`). A process that has exited → [`Error::AccessDenied`].
    pub fn read(&self, addr: usize, buf: &mut [u8]) -> Result<usize> {
        let t = self.check(Need::Read)?;
        // SAFETY: `buf` is ours to write, `buf.len()` bytes long.
        let (n, r) = unsafe { native().read_process(&t, addr, buf.as_mut_ptr(), buf.len()) };
        match r {
            Ok(()) | Err(Error::PartialCopy) => Ok(n),
            Err(e) => Err(e),
        }
    }

    /// Writes `data` at `addr` in another process (PROCESS_VM_WRITE and PROCESS_VM_OPERATION
    /// needed) — refused with [`Error::AccessDenied`] when the target shares this process's
    /// memory (see *Soundness*). Every page must be committed and writable, or executable
    /// (PAGE_EXECUTE / PAGE_EXECUTE_READ pages take the write as Windows' WriteProcessMemory
    /// gives it to them); otherwise [`Error::NoAccess`] and nothing is written. Returns the
    /// bytes written: fewer than `data.len()` if a page was refused during the copy.
    pub fn write(&self, addr: usize, data: &[u8]) -> Result<usize> {
        let t = self.check(Need::Write)?;
        let foreign = match &t {
            Target::Current => false,
            Target::Other(p) => p.shares_our_memory() == Ok(false),
        };
        if !foreign {
            return Err(Error::AccessDenied(
                "safe code may not write into this process's own memory",
            ));
        }
        // SAFETY: the target has an address space of its own (asked of the kernel just now),
        // so no borrow of this program sees the bytes; `data` is readable.
        unsafe { self.write_unchecked(addr, data) }
    }

    /// [`Process::write`] without the own-memory check: this process included.
    ///
    /// # Safety
    ///
    /// When the target is this process (or shares its memory), the caller guarantees that no
    /// reference anywhere in the program covers `[addr, addr + data.len())` and that changing
    /// those bytes breaks nothing the program relies on — the contract of
    /// [`crate::win32::WriteProcessMemory`].
    pub unsafe fn write_unchecked(&self, addr: usize, data: &[u8]) -> Result<usize> {
        let t = self.check(Need::Write)?;
        // SAFETY: the caller's contract; `data` is readable.
        let (n, r) = unsafe { native().write_process(&t, addr, data.as_ptr(), data.len()) };
        match r {
            Ok(()) | Err(Error::PartialCopy) => Ok(n.unwrap_or(0)),
            Err(e) => Err(e),
        }
    }

    /// The region containing `addr`, as VirtualQueryEx describes it
    /// (PROCESS_QUERY_INFORMATION needed).
    pub fn query(&self, addr: usize) -> Result<MemoryInfo> {
        let t = self.check(Need::Query)?;
        native().query_process(&t, addr)
    }

    /// Every region of the process's address space, in address order, as VirtualQueryEx
    /// describes them (PROCESS_QUERY_INFORMATION needed: without it, or once the process has
    /// exited, the iterator ends at once). Each region is asked for when the iterator reaches
    /// it: the list is not one snapshot of a process that keeps running.
    pub fn regions(&self) -> impl Iterator<Item = MemoryInfo> + '_ {
        let target = self.check(Need::Query).ok();
        let max = native().layout().max_address;
        let mut next = target.as_ref().map(|_| 0usize);
        std::iter::from_fn(move || {
            let at = next?;
            let info = native().query_process(target.as_ref()?, at).ok()?;
            let end = info.base_address.checked_add(info.region_size);
            next = end.filter(|&e| e > at && e <= max);
            Some(info)
        })
    }
}
