//! The address space a program runs in: a simulated process ([`virtmem::os::sim::SimOs`]) or
//! this process (virtmem's native space, real memory).

use virtmem::engine::AccessError;
use virtmem::os::sim::SimOs;
use virtmem::win32::consts::*;
use virtmem::{Access, Layout, MemoryInfo, Space, State};

pub enum Machine {
    Sim {
        space: Box<Space<SimOs>>,
        name: String,
    },
    Native,
}

/// Runs `$body` with `$s` bound to the machine's `Space` (simulated or native).
#[macro_export]
macro_rules! on_space {
    ($m:expr, $s:ident => $body:expr) => {
        match $m {
            $crate::machine::Machine::Sim { space, .. } => {
                let $s = &**space;
                $body
            }
            $crate::machine::Machine::Native => {
                let $s = virtmem::Space::native();
                $body
            }
        }
    };
}

/// Why a memory access by the program did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemFault {
    /// A Windows exception (access violation, guard page).
    Exception(AccessError),
    /// The tool will not do it (writing to native memory virtmem did not allocate).
    Refused(String),
}

impl Machine {
    pub fn sim(layout: Layout, name: &str) -> Machine {
        Machine::Sim {
            space: Box::new(Space::simulated(layout)),
            name: name.to_string(),
        }
    }

    pub fn layout(&self) -> Layout {
        on_space!(self, s => *s.layout())
    }

    pub fn is_native(&self) -> bool {
        matches!(self, Machine::Native)
    }

    /// The size of a pointer in this address space: 4 bytes for a 32-bit process.
    pub fn ptr_bytes(&self) -> u8 {
        match self {
            Machine::Native => 8,
            Machine::Sim { .. } => {
                if self.layout().max_address < 0xF000_0000 {
                    4
                } else {
                    8
                }
            }
        }
    }

    /// One line describing the space.
    pub fn describe(&self) -> String {
        let l = self.layout();
        match self {
            Machine::Sim { name, .. } => format!(
                "simulated {name} process: {} pages, {} granularity, user space {}–{}",
                crate::map::human(l.page_size as u64),
                crate::map::human(l.granularity as u64),
                crate::map::addr(l.min_address as u64, self.ptr_bytes()),
                crate::map::addr(l.max_address as u64, self.ptr_bytes()),
            ),
            Machine::Native => format!(
                "this Linux process (virtmem on real memory): {} pages, {} granularity",
                crate::map::human(l.page_size as u64),
                crate::map::human(l.granularity as u64),
            ),
        }
    }

    pub fn query(&self, addr: usize) -> virtmem::Result<MemoryInfo> {
        on_space!(self, s => s.query(addr))
    }

    /// The regions of `[from, to)` (clipped), ascending.
    pub fn regions(&self, from: usize, to: usize) -> Vec<MemoryInfo> {
        on_space!(self, s => {
            let mut out = Vec::new();
            for mut r in s.regions(from) {
                if r.base_address >= to {
                    break;
                }
                let end = r.base_address.saturating_add(r.region_size).min(to);
                r.region_size = end - r.base_address;
                out.push(r);
            }
            out
        })
    }

    /// A load by the program.
    pub fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), MemFault> {
        match self {
            Machine::Sim { space, .. } => space.read(addr, buf).map_err(MemFault::Exception),
            Machine::Native => native_read(addr, buf),
        }
    }

    /// A store by the program.
    pub fn write(&self, addr: usize, bytes: &[u8]) -> Result<(), MemFault> {
        match self {
            Machine::Sim { space, .. } => space.write(addr, bytes).map_err(MemFault::Exception),
            Machine::Native => native_write(addr, bytes),
        }
    }
}

/// Checks every page of `[addr, addr+len)` on real memory the way the MMU and virtmem's fault
/// handler would, without touching it: a guard page is consumed (through VirtualProtect) and
/// reported, anything not accessible is an access violation. Returns whether every page
/// belongs to virtmem.
fn native_check(addr: usize, len: usize, access: Access) -> Result<bool, MemFault> {
    let s = Space::native();
    let av = |address| MemFault::Exception(AccessError::AccessViolation { address, access });
    let end = addr.checked_add(len).ok_or(av(addr))?;
    let page = s.layout().page_size;
    let mut at = addr & !(page - 1);
    let mut managed = true;
    while at < end {
        let here = at.max(addr);
        let info = s.query(at).map_err(|_| av(here))?;
        if info.state != State::Commit {
            return Err(av(here));
        }
        if info.protect & PAGE_GUARD != 0 {
            // The first touch of a guard page: one shot, the access does not happen.
            let base = info.protect & 0xFF;
            s.virtual_protect(at, 1, base).map_err(|_| av(here))?;
            return Err(MemFault::Exception(AccessError::GuardPage {
                address: here,
                access,
            }));
        }
        let p = info.protect & 0xFF;
        let ok = match access {
            Access::Read => matches!(
                p,
                PAGE_READONLY
                    | PAGE_READWRITE
                    | PAGE_WRITECOPY
                    | PAGE_EXECUTE_READ
                    | PAGE_EXECUTE_READWRITE
                    | PAGE_EXECUTE_WRITECOPY
            ),
            Access::Write => matches!(
                p,
                PAGE_READWRITE | PAGE_WRITECOPY | PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY
            ),
            Access::Execute => false,
        };
        if !ok {
            return Err(av(here));
        }
        managed &= info.managed;
        let next = (at + page).min(info.base_address.saturating_add(info.region_size));
        at = if next > at { next } else { at + page };
    }
    Ok(managed)
}

fn native_read(addr: usize, buf: &mut [u8]) -> Result<(), MemFault> {
    if buf.is_empty() {
        return Ok(());
    }
    native_check(addr, buf.len(), Access::Read)?;
    // Copied by the kernel: memory that vanished or a file mapping past its end gives an
    // error, never a crash of the tool.
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: reads our own address space into `buf`; the kernel checks the source range.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n == buf.len() as isize {
        Ok(())
    } else {
        Err(MemFault::Exception(AccessError::AccessViolation {
            address: addr,
            access: Access::Read,
        }))
    }
}

fn native_write(addr: usize, bytes: &[u8]) -> Result<(), MemFault> {
    if bytes.is_empty() {
        return Ok(());
    }
    let managed = native_check(addr, bytes.len(), Access::Write)?;
    if !managed {
        return Err(MemFault::Refused(format!(
            "refusing to write at {addr:#x}: that memory was not allocated with VirtualAlloc (it belongs to the virtmem tool itself)"
        )));
    }
    // SAFETY: every page of the range is committed and writable memory of a virtmem
    // allocation (checked just above, and nothing else runs in this single-threaded tool).
    // A store to a page armed for signal-driven write watch is recorded by virtmem's handler.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len());
    }
    Ok(())
}
