//! A simulated address space: the Windows rules on bookkeeping alone, with any page size,
//! granularity and address limits (a 32-bit process, say), and sparse simulated contents. It
//! maps no real memory, so every operation is safe; the `virtmem` command's teaching mode and
//! the model tests run on it.
//!
//! ```
//! use virtmem::sim::SimSpace;
//! use virtmem::win32::*;
//! let s = SimSpace::new(virtmem::Layout::WIN32);
//! let p = s.virtual_alloc(0, 0x3000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE, false)?;
//! s.write(p, b"hi").unwrap();
//! let mut b = [0u8; 2];
//! s.read(p, &mut b).unwrap();
//! assert_eq!(&b, b"hi");
//! assert!(p < 0x8000_0000); // a 32-bit process
//! # Ok::<(), virtmem::Error>(())
//! ```
//!
//! ## Sections and several processes
//!
//! Sections (CreateFileMapping, MapViewOfFile...) work as on real memory, pagefile-backed
//! only: the simulated machine has no files, so a file-backed section fails with
//! ERROR_NOT_SUPPORTED (50). A [`SimMachine`] is the machine the simulated processes run on:
//! the section contents and the **section names** are the machine's, so a named section
//! (`Local\\name`) created in one [`SimSpace`] is opened by name in another one on the same
//! machine, and the views of both show the same bytes. [`SimSpace::new`] makes a process
//! alone on a machine of its own; [`SimMachine::space`] adds one to a machine.
//!
//! ```
//! use virtmem::sim::SimMachine;
//! use virtmem::win32::*;
//! use virtmem::{MapRequest, SectionSource};
//! let machine = SimMachine::new();
//! let a = machine.space(virtmem::Layout::WIN32);
//! let b = machine.space(virtmem::Layout::WIN32);
//! let h = a.create_section(SectionSource::Pagefile, PAGE_READWRITE, 0x1000, Some("Local\\demo"))?;
//! let view = |handle, protect| MapRequest {
//!     handle, protect, offset: 0, size: 0, base: None,
//!     replace_placeholder: false, highest_end: None,
//! };
//! let va = a.map_view(view(h.handle, PAGE_READWRITE))?;
//! a.write(va, b"hola").unwrap();
//! let hb = b.open_section(FILE_MAP_READ, Some("Local\\demo"))?;
//! let vb = b.map_view(view(hb, PAGE_READONLY))?;
//! let mut buf = [0u8; 4];
//! b.read(vb, &mut buf).unwrap();
//! assert_eq!(&buf, b"hola");
//! # Ok::<(), virtmem::Error>(())
//! ```

use crate::engine::{Created, Globals, Heaps, SectionSource, Space};
use crate::error::Error;
use crate::os::linux::names::ObjectName;
use crate::os::sim::{SectionStore, SimOs};
use crate::os::BackingId;
use crate::rules::global::{Api, LastError, Reply};
use crate::rules::sections::{handle_access, validate_create};
use crate::vocab::consts::{FILE_MAP_COPY, FILE_MAP_READ};
use crate::vocab::layout::Layout;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub use crate::engine::AccessError;
pub use crate::engine::HeapWalkEntry;
pub use crate::os::sim::{check_layout, preset, PRESETS, WIN32_3GB};

/// Checks a `PAGE_*` value (with its modifiers) the way VirtualProtect and VirtualAlloc do
/// before anything else: 87 for an unknown or contradictory value, or an executable one with
/// `from_app` (the *FromApp variants). For tools that must report errors in Windows' order.
///
/// ```
/// use virtmem::win32::*;
/// assert!(virtmem::sim::check_protection(PAGE_READWRITE, false).is_ok());
/// assert!(virtmem::sim::check_protection(PAGE_NOACCESS | PAGE_GUARD, false).is_err());
/// assert!(virtmem::sim::check_protection(PAGE_EXECUTE_READ, true).is_err());
/// ```
pub fn check_protection(protect: u32, from_app: bool) -> crate::Result<()> {
    crate::rules::Protection::parse(protect, from_app).map(|_| ())
}

/// CreateFileMapping's first checks (CF1–CF4): the protection and SEC_* attributes in
/// `fl_protect`, and a pagefile-backed section's size; 87 (or 193 for SEC_IMAGE without a
/// file). For tools that must report errors in Windows' order before looking at a file
/// handle.
///
/// ```
/// use virtmem::win32::*;
/// assert!(virtmem::sim::check_section_protection(PAGE_READWRITE | SEC_RESERVE, false, 1).is_ok());
/// assert!(virtmem::sim::check_section_protection(PAGE_READWRITE, false, 0).is_err());
/// assert!(virtmem::sim::check_section_protection(PAGE_NOACCESS, true, 0).is_err());
/// ```
pub fn check_section_protection(
    fl_protect: u32,
    file_backed: bool,
    size: u64,
) -> crate::Result<()> {
    validate_create(fl_protect, file_backed, size).map(|_| ())
}

/// MapViewOfFile's desired access (FILE_MAP_*) → the view's protection (`sections.md` MV1),
/// for tools that build a [`MapRequest`](crate::MapRequest) from MapViewOfFile's arguments.
///
/// ```
/// use virtmem::win32::*;
/// assert_eq!(virtmem::sim::view_protection(FILE_MAP_WRITE), PAGE_READWRITE);
/// assert_eq!(virtmem::sim::view_protection(FILE_MAP_READ | FILE_MAP_COPY), PAGE_READONLY);
/// assert_eq!(virtmem::sim::view_protection(FILE_MAP_COPY), PAGE_WRITECOPY);
/// ```
pub const fn view_protection(desired_access: u32) -> u32 {
    crate::rules::sections::view_protection(desired_access)
}

/// MapViewOfFile3's protection check (M3-2): the protection, or 87.
pub fn check_view_protection(protect: u32) -> crate::Result<u32> {
    crate::rules::sections::validate_view_protection(protect)
}

/// UnmapViewOfFileEx's flags check (U5): whether MEM_PRESERVE_PLACEHOLDER is asked, or 87.
pub fn check_unmap_flags(flags: u32) -> crate::Result<bool> {
    crate::rules::sections::validate_unmap_flags(flags)
}

/// A named section as the machine knows it: what a process that opens the name needs to
/// open the same backing object, and how many handles all processes hold to it (the name
/// lives while one does, `sections.md` NS2).
struct NamedSection {
    backing: BackingId,
    size: u64,
    /// The creator's protection and SEC_* attributes (CreateFileMapping's flProtect).
    fl_protect: u32,
    handles: usize,
}

struct MachineInner {
    store: Arc<SectionStore>,
    names: Mutex<HashMap<ObjectName, NamedSection>>,
}

/// A simulated machine: the section contents and section names its simulated processes
/// share (see the module documentation). Cloning gives another handle to the same machine.
#[derive(Clone)]
pub struct SimMachine {
    inner: Arc<MachineInner>,
}

impl Default for SimMachine {
    fn default() -> SimMachine {
        SimMachine::new()
    }
}

impl std::fmt::Debug for SimMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimMachine")
            .field("section_objects", &self.section_objects())
            .finish_non_exhaustive()
    }
}

impl SimMachine {
    /// A machine with no processes, sections or names.
    pub fn new() -> SimMachine {
        SimMachine::with_store(Arc::new(SectionStore::new()))
    }

    fn with_store(store: Arc<SectionStore>) -> SimMachine {
        SimMachine {
            inner: Arc::new(MachineInner {
                store,
                names: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A new, empty simulated process on this machine, with this layout (see
    /// [`check_layout`]).
    pub fn space(&self, layout: Layout) -> SimSpace {
        SimSpace {
            space: Box::new(Space::new(
                layout,
                SimOs::with_store(layout, self.inner.store.clone()),
            )),
            machine: self.clone(),
            named: Mutex::new(HashMap::new()),
            globals: std::sync::OnceLock::new(),
        }
    }

    /// How many section backing objects the machine holds (a section's memory is freed when
    /// no process has a handle to it or a view of it).
    pub fn section_objects(&self) -> usize {
        self.inner.store.objects()
    }

    /// The section names that exist now (as `Local\\name` / `Global\\name`), sorted.
    pub fn section_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.names().keys().map(display_name).collect();
        v.sort();
        v
    }

    fn names(&self) -> MutexGuard<'_, HashMap<ObjectName, NamedSection>> {
        self.inner.names.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `Local\name` or `Global\name`.
fn display_name(n: &ObjectName) -> String {
    let ns = match n.ns {
        crate::os::linux::names::Namespace::Local => "Local",
        crate::os::linux::names::Namespace::Global => "Global",
    };
    format!("{ns}\\{}", n.name)
}

/// A simulated process's address space (see the module documentation).
pub struct SimSpace {
    /// Boxed: the heaps refer to it, so it must not move with the `SimSpace`.
    space: Box<Space<SimOs>>,
    machine: SimMachine,
    /// This process's handles to named sections, with their names.
    named: Mutex<HashMap<usize, ObjectName>>,
    /// The heaps and Global/Local memory of the process, made on first use.
    globals: std::sync::OnceLock<&'static Globals<'static, SimOs>>,
}

impl SimSpace {
    /// A new, empty simulated address space with this layout (see [`check_layout`]), alone
    /// on a machine of its own.
    pub fn new(layout: Layout) -> SimSpace {
        let space = Box::new(Space::simulated(layout));
        let machine = SimMachine::with_store(space.os().store().clone());
        SimSpace {
            space,
            machine,
            named: Mutex::new(HashMap::new()),
            globals: std::sync::OnceLock::new(),
        }
    }

    /// The machine this process runs on (to start another process on it).
    pub fn machine(&self) -> SimMachine {
        self.machine.clone()
    }

    crate::spaces::forward_ops!(space,);

    /// A load by the simulated program: access violations and guard pages as on Windows.
    pub fn read(&self, addr: usize, buf: &mut [u8]) -> Result<(), AccessError> {
        self.space.read(addr, buf)
    }

    /// A store by the simulated program (recorded by write watch).
    pub fn write(&self, addr: usize, bytes: &[u8]) -> Result<(), AccessError> {
        self.space.write(addr, bytes)
    }

    /// Chooses whether MEM_RESET really discards contents (they then read as zero).
    pub fn set_discard_on_reset(&self, discard: bool) {
        self.space.os().set_discard_on_reset(discard)
    }

    /// How many simulated pages hold contents (the simulation's memory cost): this
    /// process's, and the machine's section contents.
    pub fn stored_pages(&self) -> usize {
        self.space.os().stored_pages()
    }

    /// The simulated kernel's mappings `(start, len, readable, writable, executable)`.
    pub fn mappings(&self) -> Vec<(usize, usize, bool, bool, bool)> {
        self.space
            .os()
            .mappings()
            .into_iter()
            .map(|(s, l, p)| (s, l, p.read(), p.write(), p.exec()))
            .collect()
    }

    // ---- Sections: handles go through here, so the machine knows who holds each name. ----

    /// CreateFileMapping: a pagefile-backed section of `size` bytes with `fl_protect` (a
    /// `PAGE_*` protection and `SEC_*` attributes), named or not. A name in use on the
    /// machine gives a new handle to that section and `existed` (ERROR_ALREADY_EXISTS); a
    /// file-backed section fails with ERROR_NOT_SUPPORTED (the simulated machine has no
    /// files), after the checks Windows makes first.
    pub fn create_section(
        &self,
        source: SectionSource,
        fl_protect: u32,
        size: u64,
        name: Option<&str>,
    ) -> crate::Result<Created> {
        let file_backed = matches!(source, SectionSource::File(_));
        let req = validate_create(fl_protect, file_backed, size)?;
        let name = crate::spaces::section_name(name)?;
        if file_backed {
            return Err(Error::NotSupported(
                "file-backed sections in the simulator: the simulated machine has no files \
                 (use INVALID_HANDLE_VALUE for a pagefile-backed section)",
            ));
        }
        let mut names = self.machine.names();
        let Some(n) = name else {
            return self
                .space
                .create_section(SectionSource::Pagefile, fl_protect, size, Ok(None));
        };
        if self.holds(&n) {
            // This process has a handle: the engine finds the section by its name itself.
            let c = self.space.create_section(
                SectionSource::Pagefile,
                fl_protect,
                size,
                Ok(Some(n.clone())),
            )?;
            self.track(&mut names, c.handle, n);
            return Ok(c);
        }
        if let Some(e) = names.get(&n) {
            let handle = self.adopt(e, &n, handle_access(req.protect))?;
            self.track(&mut names, handle, n);
            return Ok(Created {
                handle,
                existed: true,
            });
        }
        let c = self.space.create_section(
            SectionSource::Pagefile,
            fl_protect,
            size,
            Ok(Some(n.clone())),
        )?;
        let s = self.space.handles().get(c.handle)?.section()?.clone();
        names.insert(
            n.clone(),
            NamedSection {
                backing: s.backing,
                size: s.size,
                fl_protect,
                handles: 0,
            },
        );
        self.track(&mut names, c.handle, n);
        Ok(c)
    }

    /// OpenFileMapping: a handle with `access` to the section of that name on the machine
    /// (ERROR_FILE_NOT_FOUND if none; a `None` name is ERROR_INVALID_PARAMETER).
    pub fn open_section(&self, access: u32, name: Option<&str>) -> crate::Result<usize> {
        let Some(n) = crate::spaces::section_name(name)? else {
            return Err(Error::InvalidParameter("OpenFileMapping needs a name"));
        };
        let mut names = self.machine.names();
        let handle = if self.holds(&n) {
            self.space.open_section(access, Ok(Some(n.clone())))?
        } else if let Some(e) = names.get(&n) {
            // OF2: FILE_MAP_COPY alone is taken as FILE_MAP_READ.
            let access = if access == FILE_MAP_COPY {
                FILE_MAP_READ
            } else {
                access
            };
            self.adopt(e, &n, access)?
        } else {
            return Err(Error::FileNotFound("no section of that name"));
        };
        self.track(&mut names, handle, n);
        Ok(handle)
    }

    /// CloseHandle: the section lives on while other handles (in any process on the
    /// machine) or views refer to it; its name goes with the last handle.
    pub fn close_handle(&self, handle: usize) -> crate::Result<()> {
        let mut names = self.machine.names();
        self.space.close_handle(handle)?;
        self.untrack(&mut names, handle);
        Ok(())
    }

    /// DuplicateHandle within this process: a new handle to the same section with `access`
    /// (or the source's, with `same_access`); `close_source` closes the source.
    pub fn duplicate_handle(
        &self,
        handle: usize,
        access: u32,
        same_access: bool,
        close_source: bool,
    ) -> crate::Result<usize> {
        let mut names = self.machine.names();
        let new = self
            .space
            .duplicate_handle(handle, access, same_access, close_source)?;
        let mut named = self.named_lock();
        if let Some(n) = named.get(&handle).cloned() {
            if close_source {
                // One handle closed, one opened: the machine's count stays. (The new handle
                // may reuse the closed one's value.)
                named.remove(&handle);
            } else if let Some(e) = names.get_mut(&n) {
                e.handles += 1;
            }
            named.insert(new, n);
        }
        Ok(new)
    }

    fn named_lock(&self) -> MutexGuard<'_, HashMap<usize, ObjectName>> {
        self.named.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this process holds a handle to the section called `n` (the engine's own
    /// registry then has the name).
    fn holds(&self, n: &ObjectName) -> bool {
        self.named_lock().values().any(|x| x == n)
    }

    /// Records a new handle of this process to the named section `n`.
    fn track(&self, names: &mut HashMap<ObjectName, NamedSection>, handle: usize, n: ObjectName) {
        if let Some(e) = names.get_mut(&n) {
            e.handles += 1;
        }
        self.named_lock().insert(handle, n);
    }

    /// A handle of this process was closed: the name goes with the machine's last handle.
    fn untrack(&self, names: &mut HashMap<ObjectName, NamedSection>, handle: usize) {
        let Some(n) = self.named_lock().remove(&handle) else {
            return;
        };
        if let Some(e) = names.get_mut(&n) {
            e.handles -= 1;
            if e.handles == 0 {
                names.remove(&n);
            }
        }
    }

    /// Opens, in this process, the named section another process of the machine created:
    /// a section of this process over the same backing object (the backend opens it instead
    /// of creating one), and a handle to it with `access`. Called with the machine's names
    /// locked, so no other section of this process is created meanwhile.
    fn adopt(&self, e: &NamedSection, n: &ObjectName, access: u32) -> crate::Result<usize> {
        let os = self.space.os();
        os.adopt_next(Some(e.backing));
        let r = self.space.create_section(
            SectionSource::Pagefile,
            e.fl_protect,
            e.size,
            Ok(Some(n.clone())),
        );
        os.adopt_next(None);
        let c = r?;
        // The handle gets exactly the access asked for.
        self.space.duplicate_handle(c.handle, access, false, true)
    }
}

impl Drop for SimSpace {
    /// The simulated process ends: its handles close, so names only it held disappear.
    fn drop(&mut self) {
        let mut names = self.machine.names();
        let handles: Vec<usize> = self.named_lock().keys().copied().collect();
        for h in handles {
            self.untrack(&mut names, h);
        }
    }
}

impl std::fmt::Debug for SimSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSpace")
            .field("layout", self.space.layout())
            .finish_non_exhaustive()
    }
}

/// The heap and Global/Local calls of a simulated process (issue 16 item 6): the same engine
/// as the Win32 face, on simulated memory (heap headers and the handle table are read and
/// written through the simulated contents). Handles and pointers are the simulated
/// process's addresses; every value is checked against the heaps' tables, so any value is
/// safe to pass. The handle table keeps the 64-bit layout (16-byte entries, `h % 16 == 8`)
/// even in a 32-bit simulated process (our decision).
impl SimSpace {
    fn globals(&self) -> &Globals<'_, SimOs> {
        self.globals.get_or_init(|| {
            // SAFETY: the space is boxed and neither moved nor replaced while this `SimSpace`
            // lives, and the (leaked) heaps made here are reachable only through `&self`, so
            // they are never used after the space is dropped.
            let space: &'static Space<SimOs> = unsafe { &*(&*self.space as *const Space<SimOs>) };
            Globals::new(Heaps::new(space))
        })
    }

    fn heaps(&self) -> &Heaps<'_, SimOs> {
        self.globals().heaps()
    }

    /// Whether the process has used its heaps yet (a simulated process's heaps, the process
    /// heap included, are made on its first heap or Global/Local call).
    pub fn heaps_started(&self) -> bool {
        self.globals.get().is_some()
    }

    /// HeapCreate: the new heap's handle.
    pub fn heap_create(
        &self,
        options: u32,
        initial: usize,
        maximum: usize,
    ) -> crate::Result<usize> {
        self.heaps().create(options, initial, maximum)
    }

    /// HeapDestroy.
    pub fn heap_destroy(&self, heap: usize) -> crate::Result<()> {
        self.heaps().destroy(heap)
    }

    /// GetProcessHeap (made on first use).
    pub fn process_heap(&self) -> crate::Result<usize> {
        self.heaps().process_heap()
    }

    /// GetProcessHeaps: every heap's handle, the process heap first.
    pub fn heap_handles(&self) -> Vec<usize> {
        self.heaps().handles().iter().copied().collect()
    }

    /// HeapAlloc.
    pub fn heap_alloc(&self, heap: usize, flags: u32, size: usize) -> crate::Result<usize> {
        self.heaps().alloc(heap, flags, size)
    }

    /// HeapReAlloc.
    pub fn heap_realloc(
        &self,
        heap: usize,
        flags: u32,
        block: usize,
        size: usize,
    ) -> crate::Result<usize> {
        self.heaps().realloc(heap, flags, block, size)
    }

    /// HeapFree (a NULL block succeeds).
    pub fn heap_free(&self, heap: usize, flags: u32, block: usize) -> crate::Result<()> {
        if block == 0 {
            return Ok(());
        }
        self.heaps().free(heap, flags, block)
    }

    /// HeapSize.
    pub fn heap_size(&self, heap: usize, flags: u32, block: usize) -> crate::Result<usize> {
        self.heaps().size(heap, flags, block)
    }

    /// HeapValidate (a NULL block checks the whole heap).
    pub fn heap_validate(&self, heap: usize, flags: u32, block: usize) -> crate::Result<bool> {
        self.heaps().validate(heap, flags, block)
    }

    /// HeapCompact: the largest committed free block.
    pub fn heap_compact(&self, heap: usize, flags: u32) -> crate::Result<usize> {
        self.heaps().compact(heap, flags)
    }

    /// HeapWalk: the entry after `cur` (a default entry starts the walk), `None` at the end.
    pub fn heap_walk(
        &self,
        heap: usize,
        cur: &HeapWalkEntry,
    ) -> crate::Result<Option<HeapWalkEntry>> {
        self.heaps().walk(heap, cur)
    }

    /// HeapSummary.
    pub fn heap_summary(&self, heap: usize) -> crate::Result<crate::HeapSummary> {
        let s = self.heaps().summary(heap, 0)?;
        Ok(crate::HeapSummary {
            allocated: s.allocated,
            committed: s.committed,
            reserved: s.reserved,
            max_reserve: s.max_reserve,
        })
    }

    /// Every reservation `(base, size)` of a heap (segments, front-end arenas, large blocks).
    pub fn heap_reservations(&self, heap: usize) -> crate::Result<Vec<(usize, usize)>> {
        self.heaps().reservations(heap)
    }

    /// The Global/Local handle table's reservation, once a moveable block was made.
    pub fn global_handle_table(&self) -> Option<(usize, usize)> {
        self.globals().table_range()
    }

    /// A Global* (`local` false) or Local* call: `name` without its prefix — "Alloc" (`a`
    /// flags, `b` size), "ReAlloc" (`a` handle, `b` size, `c` flags), "Free", "Lock",
    /// "Unlock", "Size", "Flags", "Handle", "Discard" (`a` the handle or pointer). Returns the
    /// value (a BOOL as 0/1) and what the last error becomes (`None`: untouched), exactly as
    /// the Win32 face answers; an unknown name is ERROR_CALL_NOT_IMPLEMENTED.
    pub fn global_call(
        &self,
        local: bool,
        name: &str,
        a: usize,
        b: usize,
        c: u32,
    ) -> (usize, Option<u32>) {
        let api = if local { Api::Local } else { Api::Global };
        let g = self.globals();
        fn out<T>(r: Reply<T>, f: impl FnOnce(T) -> usize) -> (usize, Option<u32>) {
            let le = match r.last_error {
                LastError::Keep => None,
                LastError::Set(c) => Some(c),
            };
            (f(r.value), le)
        }
        match name {
            "Alloc" => out(g.alloc(api, a as u32, b), |v| v),
            "ReAlloc" => out(g.realloc(api, a, b, c), |v| v),
            "Free" => out(g.free(api, a), |v| v),
            "Lock" => out(g.lock(api, a), |v| v),
            "Unlock" => out(g.unlock(api, a), usize::from),
            "Size" => out(g.size(api, a), |v| v),
            "Flags" => out(g.flags(api, a), |v| v as usize),
            "Handle" => out(g.handle(api, a), |v| v),
            "Discard" => out(g.discard(api, a), |v| v),
            _ => (0, Some(crate::vocab::consts::ERROR_CALL_NOT_IMPLEMENTED)),
        }
    }
}
