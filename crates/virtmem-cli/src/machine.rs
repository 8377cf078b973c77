//! The address space a program runs in: a simulated process ([`virtmem::sim::SimSpace`]) or
//! this process ([`virtmem::NativeSpace`], real memory).
//!
//! On real memory the program shares the address space with the tool that interprets it.
//! A program's process is the memory it allocated: every call that changes memory goes
//! through [`Native::guard`], which admits only pages of the allocations the program itself
//! created (and physical frames it allocated), so a program can never re-protect, free or
//! overwrite the tool's own pages. Queries of any address stay allowed. The same holds for
//! sections: the views a program maps are its allocations (so it may write to them and unmap
//! them), and the handles it opens are its handles; any other view or handle is refused
//! (ERROR_INVALID_ADDRESS 487, ERROR_INVALID_HANDLE 6).

use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use virtmem::sim::{AccessError, SimMachine, SimSpace};
use virtmem::win32::consts::*;
use virtmem::{
    Access, Created, Error, ExtendedParameter, Layout, MapRequest, MemoryInfo, NativeSpace,
    SectionSource, State,
};

/// Where a program runs: a simulated process, or this one (see [`Native`]).
pub enum Machine {
    Sim { space: Box<SimSpace>, name: String },
    Native(Native),
}

/// Runs `$body` with `$s` bound to the machine's space: a `&SimSpace` or a `&NativeSpace`.
/// For the safe methods both share (queries, `layout`, `allocations`...); state changes go
/// through the `Machine` methods below, which guard the native space.
macro_rules! on_space {
    ($m:expr, $s:ident => $body:expr) => {
        match $m {
            $crate::machine::Machine::Sim { space, .. } => {
                let $s: &virtmem::sim::SimSpace = &**space;
                $body
            }
            $crate::machine::Machine::Native(native) => {
                let $s: &virtmem::NativeSpace = native.space();
                $body
            }
        }
    };
}

/// This process's address space as a program sees it: the native space, and which of its
/// allocations and physical frames are the program's.
pub struct Native {
    space: NativeSpace,
    /// The ids of the allocations the program's own calls created (its reservations, and the
    /// allocations split or coalesced from them) and that are still live.
    mine: RefCell<HashSet<u64>>,
    /// The physical frames (AWE) the program allocated and has not freed.
    frames: RefCell<BTreeSet<usize>>,
    /// The section handles the program opened and has not closed.
    handles: RefCell<BTreeSet<usize>>,
}

/// The error of a refused native call: ERROR_INVALID_ADDRESS (487), as for any address the
/// process cannot change.
const NOT_THE_PROGRAMS: Error =
    Error::InvalidAddress("the memory was not allocated by the program (it is the tool's)");

impl Native {
    /// The process's space as it is now: every live allocation belongs to the tool.
    fn new() -> Native {
        let space = NativeSpace::get();
        Native {
            mine: RefCell::new(HashSet::new()),
            frames: RefCell::new(BTreeSet::new()),
            handles: RefCell::new(BTreeSet::new()),
            space,
        }
    }

    pub fn space(&self) -> &NativeSpace {
        &self.space
    }

    /// The guard of every native call that changes memory: `Ok` only if every byte of each
    /// range `(addr, size)` lies in allocations the program created (a size of 0 stands for
    /// the page at `addr`: VirtualFree's "the whole allocation" is that page's allocation) and
    /// every frame in `frames` is one the program allocated. Anything else is
    /// ERROR_INVALID_ADDRESS (487) before the call is made, so a program cannot change the
    /// tool's own memory (its heap, stacks, code) or memory virtmem manages for the tool.
    pub fn guard(&self, ranges: &[(usize, usize)], frames: &[usize]) -> virtmem::Result<()> {
        let allocations = self.space.allocations();
        let mine = self.mine.borrow();
        let covered = |addr: usize, size: usize| -> bool {
            let Some(end) = addr.checked_add(size.max(1)) else {
                return false;
            };
            // Ascending and disjoint: walk the program's allocations from `addr` on.
            let mut at = addr;
            for &(base, len, id) in &allocations {
                if !mine.contains(&id) || base.saturating_add(len) <= at {
                    continue;
                }
                if base > at {
                    return false;
                }
                at = base.saturating_add(len);
                if at >= end {
                    return true;
                }
            }
            false
        };
        if !ranges.iter().all(|&(a, s)| covered(a, s)) {
            return Err(NOT_THE_PROGRAMS);
        }
        let owned = self.frames.borrow();
        if !frames.iter().all(|f| owned.contains(f)) {
            return Err(NOT_THE_PROGRAMS);
        }
        Ok(())
    }

    /// Runs a program's call that can create allocations (a reservation, a placeholder split
    /// or coalesce): the allocations that appear during it are the program's. Released ones
    /// are forgotten (ids are never reused).
    fn adopting<T>(&self, call: impl FnOnce() -> T) -> T {
        let ids = || -> HashSet<u64> { self.space.allocations().iter().map(|a| a.2).collect() };
        let before = ids();
        let r = call();
        let after = ids();
        let mut mine = self.mine.borrow_mut();
        mine.extend(after.difference(&before));
        mine.retain(|id| after.contains(id));
        r
    }

    /// The bases of the program's live allocations, ascending.
    pub fn program_allocations(&self) -> Vec<usize> {
        let mine = self.mine.borrow();
        self.space
            .allocations()
            .into_iter()
            .filter(|a| mine.contains(&a.2))
            .map(|a| a.0)
            .collect()
    }
}

/// The ranges a VirtualAlloc/VirtualAlloc2 of type `t` at `addr` changes in memory that
/// already exists: none for a new reservation (MEM_RESERVE, or anything but a reset at a NULL
/// address, which reserves and commits: it maps only free address space, at a fixed address
/// with MAP_FIXED_NOREPLACE, never over anything), else the range itself (a commit, reset or
/// reset undo at an address, or replacing a placeholder).
fn alloc_ranges(addr: usize, size: usize, t: u32) -> Vec<(usize, usize)> {
    let fresh = t & (MEM_RESET | MEM_RESET_UNDO | MEM_REPLACE_PLACEHOLDER) == 0
        && (t & MEM_RESERVE != 0 || addr == 0);
    if fresh {
        Vec::new()
    } else {
        vec![(addr, size)]
    }
}

/// Why a memory access by the program did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemFault {
    /// A Windows exception (access violation, guard page).
    Exception(AccessError),
    /// The tool will not do it (writing to native memory the program did not allocate).
    Refused(String),
}

impl Machine {
    pub fn sim(layout: Layout, name: &str) -> Machine {
        Machine::sim_on(&SimMachine::new(), layout, name)
    }

    /// A simulated process on `machine`: it shares the machine's named sections with the
    /// other processes on it.
    pub fn sim_on(machine: &SimMachine, layout: Layout, name: &str) -> Machine {
        Machine::Sim {
            space: Box::new(machine.space(layout)),
            name: name.to_string(),
        }
    }

    /// This process, for a program starting now: the allocations that exist already are the
    /// tool's, and the program may not change them.
    pub fn native() -> Machine {
        Machine::Native(Native::new())
    }

    /// The simulated process, if the program runs in one (heaps and Global/Local memory are
    /// offered to simulated programs only).
    pub fn sim_space(&self) -> Option<&SimSpace> {
        match self {
            Machine::Sim { space, .. } => Some(space),
            Machine::Native(_) => None,
        }
    }

    /// Map labels of heap memory, by allocation base (as VMMap names heaps): "heap (process)",
    /// "heap 0x…" for each reservation of a heap, "heap handle table (Global/Local)".
    pub fn heap_labels(&self) -> std::collections::HashMap<usize, String> {
        let mut out = std::collections::HashMap::new();
        let Some(s) = self.sim_space().filter(|s| s.heaps_started()) else {
            return out;
        };
        let process = s.process_heap().ok();
        for h in s.heap_handles() {
            let label = if Some(h) == process {
                "heap (process)".to_string()
            } else {
                format!("heap {h:#x}")
            };
            for (base, _) in s.heap_reservations(h).unwrap_or_default() {
                out.insert(base, label.clone());
            }
        }
        if let Some((base, _)) = s.global_handle_table() {
            out.insert(base, "heap handle table (Global/Local)".to_string());
        }
        out
    }

    pub fn layout(&self) -> Layout {
        on_space!(self, s => s.layout())
    }

    pub fn is_native(&self) -> bool {
        matches!(self, Machine::Native(_))
    }

    /// The size of a pointer in this address space: 4 bytes for a 32-bit process.
    pub fn ptr_bytes(&self) -> u8 {
        match self {
            Machine::Native(_) => 8,
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
            Machine::Native(_) => format!(
                "this Linux process (virtmem on real memory): {} pages, {} granularity",
                crate::map::human(l.page_size as u64),
                crate::map::human(l.granularity as u64),
            ),
        }
    }

    pub fn query(&self, addr: usize) -> virtmem::Result<MemoryInfo> {
        on_space!(self, s => s.query(addr))
    }

    /// Every allocation's `(base, size, id)`, ascending.
    pub fn allocations(&self) -> Vec<(usize, usize, u64)> {
        on_space!(self, s => s.allocations())
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
            Machine::Native(n) => n.read(addr, buf),
        }
    }

    /// A store by the program.
    pub fn write(&self, addr: usize, bytes: &[u8]) -> Result<(), MemFault> {
        match self {
            Machine::Sim { space, .. } => space.write(addr, bytes).map_err(MemFault::Exception),
            Machine::Native(n) => n.write(addr, bytes),
        }
    }

    // The program's calls that change memory. A simulated space maps nothing: every call is
    // safe. On the native space each one is first admitted by `Native::guard`.

    /// VirtualAlloc (`from_app`: VirtualAllocFromApp).
    pub fn virtual_alloc(
        &self,
        addr: usize,
        size: usize,
        t: u32,
        protect: u32,
        from_app: bool,
    ) -> virtmem::Result<usize> {
        match self {
            Machine::Sim { space, .. } => space.virtual_alloc(addr, size, t, protect, from_app),
            Machine::Native(n) => {
                n.guard(&alloc_ranges(addr, size, t), &[])?;
                // SAFETY: the guard admitted the call: either a new reservation (it maps only
                // free address space) or a change to pages of the program's own allocations,
                // which no Rust reference of the tool can see.
                n.adopting(|| unsafe { n.space.virtual_alloc(addr, size, t, protect, from_app) })
            }
        }
    }

    /// VirtualAlloc2 (`from_app`: VirtualAlloc2FromApp) with decoded extended parameters.
    pub fn virtual_alloc2(
        &self,
        addr: usize,
        size: usize,
        t: u32,
        protect: u32,
        params: &[ExtendedParameter],
        from_app: bool,
    ) -> virtmem::Result<usize> {
        match self {
            Machine::Sim { space, .. } => {
                space.virtual_alloc2(addr, size, t, protect, params, from_app)
            }
            Machine::Native(n) => {
                n.guard(&alloc_ranges(addr, size, t), &[])?;
                // SAFETY: the guard admitted the call: a new reservation (free address space
                // only) or replacing a placeholder / committing inside the program's own
                // allocations, which no Rust reference of the tool can see.
                n.adopting(|| unsafe {
                    n.space
                        .virtual_alloc2(addr, size, t, protect, params, from_app)
                })
            }
        }
    }

    /// VirtualFree.
    pub fn virtual_free(&self, addr: usize, size: usize, t: u32) -> virtmem::Result<()> {
        match self {
            Machine::Sim { space, .. } => space.virtual_free(addr, size, t),
            Machine::Native(n) => {
                n.guard(&[(addr, size)], &[])?;
                // SAFETY: the guard admitted only the program's own allocations (size 0: the
                // allocation holding `addr`, which is then the program's whole).
                n.adopting(|| unsafe { n.space.virtual_free(addr, size, t) })
            }
        }
    }

    /// VirtualProtect: the first page's old protection.
    pub fn virtual_protect(&self, addr: usize, size: usize, protect: u32) -> virtmem::Result<u32> {
        match self {
            Machine::Sim { space, .. } => space.virtual_protect(addr, size, protect),
            Machine::Native(n) => {
                n.guard(&[(addr, size)], &[])?;
                // SAFETY: the guard admitted only pages of the program's own allocations.
                unsafe { n.space.virtual_protect(addr, size, protect) }
            }
        }
    }

    /// VirtualLock.
    pub fn virtual_lock(&self, addr: usize, size: usize) -> virtmem::Result<()> {
        match self {
            Machine::Sim { space, .. } => space.virtual_lock(addr, size),
            Machine::Native(n) => {
                n.guard(&[(addr, size)], &[])?;
                // SAFETY: the guard admitted only pages of the program's own allocations.
                unsafe { n.space.virtual_lock(addr, size) }
            }
        }
    }

    /// VirtualUnlock.
    pub fn virtual_unlock(&self, addr: usize, size: usize) -> virtmem::Result<()> {
        match self {
            Machine::Sim { space, .. } => space.virtual_unlock(addr, size),
            Machine::Native(n) => {
                n.guard(&[(addr, size)], &[])?;
                // SAFETY: the guard admitted only pages of the program's own allocations.
                unsafe { n.space.virtual_unlock(addr, size) }
            }
        }
    }

    /// GetWriteWatch: the written pages (at most `max`), reset if `reset`.
    pub fn get_write_watch(
        &self,
        base: usize,
        size: usize,
        reset: bool,
        max: usize,
    ) -> virtmem::Result<Vec<usize>> {
        match self {
            Machine::Sim { space, .. } => space.get_write_watch(base, size, reset, max),
            Machine::Native(n) => {
                if reset {
                    n.guard(&[(base, size)], &[])?;
                }
                // SAFETY: without reset the call only reads the watch state; with reset the
                // guard admitted only pages of the program's own allocations.
                unsafe { n.space.get_write_watch(base, size, reset, max) }
            }
        }
    }

    /// ResetWriteWatch.
    pub fn reset_write_watch(&self, base: usize, size: usize) -> virtmem::Result<()> {
        match self {
            Machine::Sim { space, .. } => space.reset_write_watch(base, size),
            Machine::Native(n) => {
                n.guard(&[(base, size)], &[])?;
                // SAFETY: the guard admitted only pages of the program's own allocations.
                unsafe { n.space.reset_write_watch(base, size) }
            }
        }
    }

    /// AllocateUserPhysicalPages: the frames are the program's.
    pub fn allocate_physical_pages(&self, n: usize) -> virtmem::Result<Vec<usize>> {
        match self {
            Machine::Sim { space, .. } => space.allocate_physical_pages(n),
            Machine::Native(native) => {
                let pfns = native.space.allocate_physical_pages(n)?;
                native.frames.borrow_mut().extend(pfns.iter().copied());
                Ok(pfns)
            }
        }
    }

    /// MapUserPhysicalPages: maps `frames` (or unmaps `n` pages with `None`) at `addr`.
    pub fn map_physical_pages(
        &self,
        addr: usize,
        n: usize,
        frames: Option<&[usize]>,
    ) -> virtmem::Result<()> {
        match self {
            Machine::Sim { space, .. } => space.map_physical_pages(addr, n, frames),
            Machine::Native(native) => {
                let len = n.saturating_mul(self.layout().page_size);
                native.guard(&[(addr, len)], frames.unwrap_or_default())?;
                // SAFETY: the guard admitted only pages of the program's own allocations and
                // frames the program allocated.
                unsafe { native.space.map_physical_pages(addr, n, frames) }
            }
        }
    }

    /// MapUserPhysicalPagesScatter.
    pub fn map_physical_pages_scatter(
        &self,
        addrs: &[usize],
        frames: Option<&[usize]>,
    ) -> virtmem::Result<()> {
        match self {
            Machine::Sim { space, .. } => space.map_physical_pages_scatter(addrs, frames),
            Machine::Native(native) => {
                let pages: Vec<(usize, usize)> = addrs.iter().map(|&a| (a, 1)).collect();
                native.guard(&pages, frames.unwrap_or_default())?;
                // SAFETY: the guard admitted only pages of the program's own allocations and
                // frames the program allocated.
                unsafe { native.space.map_physical_pages_scatter(addrs, frames) }
            }
        }
    }

    /// FreeUserPhysicalPages: how many were freed, and the error that stopped it.
    pub fn free_physical_pages(&self, frames: &[usize]) -> (usize, virtmem::Result<()>) {
        match self {
            Machine::Sim { space, .. } => space.free_physical_pages(frames),
            Machine::Native(native) => {
                if let Err(e) = native.guard(&[], frames) {
                    return (0, Err(e));
                }
                // SAFETY: the guard admitted only frames the program allocated (freeing one
                // unmaps it from the program's own AWE windows).
                let (freed, r) = unsafe { native.space.free_physical_pages(frames) };
                // Freed in order: the first `freed` are no longer the program's.
                let mut mine = native.frames.borrow_mut();
                for f in &frames[..freed.min(frames.len())] {
                    mine.remove(f);
                }
                (freed, r)
            }
        }
    }

    // ---- Sections. Handles change no memory; on the native space the program may use only
    // the handles it opened, and unmap (or map into) only its own allocations.

    /// On the native space: ERROR_INVALID_HANDLE unless the program opened `h`.
    fn own_handle(&self, h: usize) -> virtmem::Result<()> {
        match self {
            Machine::Native(n) if !n.handles.borrow().contains(&h) => Err(Error::InvalidHandle),
            _ => Ok(()),
        }
    }

    /// Records a handle the program now holds (on the native space).
    fn opened(&self, h: usize) {
        if let Machine::Native(n) = self {
            n.handles.borrow_mut().insert(h);
        }
    }

    /// Records that the program no longer holds `h` (on the native space).
    fn closed(&self, h: usize) {
        if let Machine::Native(n) = self {
            n.handles.borrow_mut().remove(&h);
        }
    }

    /// CreateFileMapping: pagefile-backed (`file` None) or of a file handle; the simulator
    /// has no files (ERROR_NOT_SUPPORTED), and a native program may only pass file handles
    /// it opened (it has no way to open files yet: ERROR_INVALID_HANDLE).
    pub fn create_section(
        &self,
        file: Option<usize>,
        fl_protect: u32,
        size: u64,
        name: Option<&str>,
    ) -> virtmem::Result<Created> {
        let source = match file {
            None => SectionSource::Pagefile,
            Some(h) => SectionSource::File(h),
        };
        let c = match self {
            Machine::Sim { space, .. } => space.create_section(source, fl_protect, size, name)?,
            Machine::Native(n) => {
                if let Some(h) = file {
                    // The protection's errors come first (CF11).
                    virtmem::sim::check_section_protection(fl_protect, true, size)?;
                    self.own_handle(h)?;
                }
                n.space.create_section(source, fl_protect, size, name)?
            }
        };
        self.opened(c.handle);
        Ok(c)
    }

    /// OpenFileMapping.
    pub fn open_section(&self, access: u32, name: Option<&str>) -> virtmem::Result<usize> {
        let h = match self {
            Machine::Sim { space, .. } => space.open_section(access, name)?,
            Machine::Native(n) => n.space.open_section(access, name)?,
        };
        self.opened(h);
        Ok(h)
    }

    /// CloseHandle.
    pub fn close_handle(&self, h: usize) -> virtmem::Result<()> {
        self.own_handle(h)?;
        match self {
            Machine::Sim { space, .. } => space.close_handle(h)?,
            Machine::Native(n) => n.space.close_handle(h)?,
        }
        self.closed(h);
        Ok(())
    }

    /// DuplicateHandle within the process.
    pub fn duplicate_handle(
        &self,
        h: usize,
        access: u32,
        same_access: bool,
        close_source: bool,
    ) -> virtmem::Result<usize> {
        self.own_handle(h)?;
        let new = match self {
            Machine::Sim { space, .. } => {
                space.duplicate_handle(h, access, same_access, close_source)?
            }
            Machine::Native(n) => n
                .space
                .duplicate_handle(h, access, same_access, close_source)?,
        };
        if close_source {
            self.closed(h);
        }
        self.opened(new);
        Ok(new)
    }

    /// MapViewOfFile*: the view is the program's allocation.
    pub fn map_view(&self, req: MapRequest) -> virtmem::Result<usize> {
        let base = match self {
            Machine::Sim { space, .. } => space.map_view(req)?,
            Machine::Native(n) => {
                self.own_handle(req.handle)?;
                if req.replace_placeholder {
                    // The placeholder replaced must be the program's.
                    n.guard(&[(req.base.unwrap_or(0), req.size)], &[])?;
                }
                // SAFETY: without MEM_REPLACE_PLACEHOLDER a view maps only free address
                // space (a fixed base never replaces anything); with it, the guard admitted
                // only a placeholder of the program's own, which no Rust reference of the
                // tool can see. The new view becomes the program's.
                n.adopting(|| unsafe { n.space.map_view(req) })?
            }
        };
        Ok(base)
    }

    /// UnmapViewOfFile*: only a view of the program's (on the native space).
    pub fn unmap_view(&self, addr: usize, preserve: bool) -> virtmem::Result<()> {
        match self {
            Machine::Sim { space, .. } => space.unmap_view(addr, preserve)?,
            Machine::Native(n) => {
                n.guard(&[(addr, 1)], &[])?;
                // SAFETY: the guard admitted only an allocation of the program's (its view),
                // which no Rust reference of the tool can see; a placeholder it turns back
                // into is the program's too.
                n.adopting(|| unsafe { n.space.unmap_view(addr, preserve) })?
            }
        }
        Ok(())
    }

    /// FlushViewOfFile (writes back, changes no memory).
    pub fn flush_view(&self, addr: usize, size: usize) -> virtmem::Result<()> {
        on_space!(self, s => s.flush_view(addr, size))
    }

    /// What the map calls the view based at `base`: its file's path or its section's name.
    pub fn view_name(&self, base: usize) -> Option<String> {
        on_space!(self, s => s.view_label(base))
    }

    /// When a program ends: releases the allocations it made on the native space (unmapping
    /// its views) and closes its handles, as Windows does when a process exits. Returns how
    /// many allocations there were.
    pub fn release_program_memory(&self) -> usize {
        let Machine::Native(n) = self else {
            return 0;
        };
        let bases = n.program_allocations();
        for &base in &bases {
            let view = self
                .query(base)
                .is_ok_and(|i| i.kind == virtmem::RegionType::Mapped);
            let _ = if view {
                self.unmap_view(base, false)
            } else {
                self.virtual_free(base, 0, MEM_RELEASE)
            };
        }
        let handles: Vec<usize> = n.handles.borrow().iter().copied().collect();
        for h in handles {
            let _ = self.close_handle(h);
        }
        bases.len()
    }
}

impl Native {
    /// Checks every page of `[addr, addr+len)` on real memory the way the MMU and virtmem's
    /// fault handler would, without touching it: a guard page of the program's is consumed
    /// (through VirtualProtect) and reported, anything not accessible is an access violation.
    fn check(&self, addr: usize, len: usize, access: Access) -> Result<(), MemFault> {
        let s = &self.space;
        let av = |address| MemFault::Exception(AccessError::AccessViolation { address, access });
        let end = addr.checked_add(len).ok_or(av(addr))?;
        let page = s.layout().page_size;
        let mut at = addr & !(page - 1);
        while at < end {
            let here = at.max(addr);
            let info = s.query(at).map_err(|_| av(here))?;
            if info.state != State::Commit {
                return Err(av(here));
            }
            if info.protect & PAGE_GUARD != 0 {
                // The first touch of a guard page: one shot, the access does not happen.
                let base = info.protect & 0xFF;
                self.guard(&[(at, 1)], &[]).map_err(|_| {
                    MemFault::Refused(format!(
                        "refusing to touch the guard page at {at:#x}: that memory was not allocated by the program"
                    ))
                })?;
                // SAFETY: the guard admitted the page: it is the program's own memory.
                unsafe { s.virtual_protect(at, 1, base) }.map_err(|_| av(here))?;
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
                    PAGE_READWRITE
                        | PAGE_WRITECOPY
                        | PAGE_EXECUTE_READWRITE
                        | PAGE_EXECUTE_WRITECOPY
                ),
                Access::Execute => false,
            };
            if !ok {
                return Err(av(here));
            }
            let next = (at + page).min(info.base_address.saturating_add(info.region_size));
            at = if next > at { next } else { at + page };
        }
        Ok(())
    }

    /// A load by the program: any readable memory (a query of the tool's own is allowed too).
    fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), MemFault> {
        if buf.is_empty() {
            return Ok(());
        }
        self.check(addr, buf.len(), Access::Read)?;
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

    /// A store by the program: only into its own allocations.
    fn write(&self, addr: usize, bytes: &[u8]) -> Result<(), MemFault> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.check(addr, bytes.len(), Access::Write)?;
        self.guard(&[(addr, bytes.len())], &[]).map_err(|_| {
            MemFault::Refused(format!(
                "refusing to write at {addr:#x}: that memory was not allocated by the program (it belongs to the virtmem tool itself)"
            ))
        })?;
        // SAFETY: every page of the range is committed and writable (checked first) and lies
        // in the program's own allocations (the guard), which no Rust reference of the tool
        // can see; nothing else runs in this single-threaded tool. A store to a page armed
        // for signal-driven write watch is recorded by virtmem's handler.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len());
        }
        Ok(())
    }
}
