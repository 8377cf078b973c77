//! Sections (file mapping objects): CreateFileMapping, OpenFileMapping, handles to them, and
//! their lifetime (`sections.md` §1–§5, §13–§15).
//!
//! A section lives while a handle or a view refers to it (O3): `refs` counts both, and the
//! backing object is closed when it drops to zero. A name lives while a *handle* does (NS2):
//! `handles` counts them, and the name leaves this process's registry (and the process gives
//! up its hold on the cross-process object) when it drops to zero.

use super::handles::{Entry, Object};
use super::Space;
use crate::error::{Error, Result};
use crate::os::linux::names::{NamedObject, ObjectName, SharedHeader};
use crate::os::{BackingId, Os};
use crate::rules::sections::{file_access_needed, handle_access, validate_create, CreateSection};
use crate::vocab::consts::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One section. Its identity never changes.
pub(crate) struct Section {
    /// Size in bytes: to the byte for file-backed sections, page-rounded otherwise.
    pub size: u64,
    /// The page protection given at creation (one of the six of CF2).
    pub protect: u32,
    /// SEC_* attributes as NtQuerySection reports them (O1).
    pub attributes: u32,
    /// PAGE_NOCACHE / PAGE_WRITECOMBINE, from SEC_NOCACHE / SEC_WRITECOMBINE (VQ3).
    pub modifiers: u32,
    /// The backing object.
    pub backing: BackingId,
    /// Where the section's data starts in the backing object (a named object's header page).
    pub data_offset: u64,
    /// Backed by a file (else by the paging file).
    pub file_backed: bool,
    /// SEC_RESERVE: pages are committed through views; the backing's allocated ranges say
    /// which are (shared by every view in every process).
    pub reserve: bool,
    /// SEC_LARGE_PAGES: the large-page size.
    pub large_page: usize,
    /// What the address-space map calls the section: the file's path, else the name it was
    /// created or opened with (`Local\\…`), else nothing.
    pub label: Mutex<Option<String>>,
    /// Handles and views referring to the section.
    refs: AtomicUsize,
    /// Handles referring to it (the name lives while one does).
    handles: AtomicUsize,
    /// The name, and this process's hold on the cross-process object, while a handle lives.
    name: Mutex<Option<(ObjectName, Option<NamedObject>)>>,
}

impl Section {
    /// Whether this is a view-committable (SEC_RESERVE) section.
    pub(crate) fn is_reserve(&self) -> bool {
        self.reserve
    }
}

/// The sections of one space that have names, by name (only while a handle lives).
#[derive(Default)]
pub(crate) struct Names {
    map: Mutex<HashMap<ObjectName, Arc<Section>>>,
    /// Serializes what makes a name come and go — a named create or open (look up, create,
    /// register, count the handle) and the last close of a handle — so a lookup never
    /// revives a section whose last handle is being closed.
    serial: Mutex<()>,
}

impl Names {
    /// Fork: holds the registry's lock until the guard is dropped.
    pub(crate) fn hold(
        &self,
    ) -> (
        std::sync::MutexGuard<'_, ()>,
        std::sync::MutexGuard<'_, HashMap<ObjectName, Arc<Section>>>,
    ) {
        let serial = self.serial();
        (serial, self.map.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn serial(&self) -> std::sync::MutexGuard<'_, ()> {
        self.serial.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a new section's pages come from.
pub enum SectionSource {
    /// The paging file (`INVALID_HANDLE_VALUE` or NULL as the file handle).
    Pagefile,
    /// The file of this handle.
    File(usize),
}

/// A created or opened section: the new handle, and whether the name existed (the last error
/// is then ERROR_ALREADY_EXISTS, else 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Created {
    /// The new handle.
    pub handle: usize,
    /// A section of that name existed: the handle refers to it.
    pub existed: bool,
}

impl<O: Os> Space<O> {
    /// CreateFileMapping: a new section (or, for a name in use, a new handle to that section).
    /// `name` is the parsed name (its error is reported at its place in CF11's order).
    pub fn create_section(
        &self,
        source: SectionSource,
        fl_protect: u32,
        size: u64,
        name: Result<Option<ObjectName>>,
    ) -> Result<Created> {
        let file_backed = matches!(source, SectionSource::File(_));
        let req = validate_create(fl_protect, file_backed, size)?;
        let name = name?;
        let _serial = name.is_some().then(|| self.names.serial());
        let section = match source {
            SectionSource::Pagefile => {
                if let Some(n) = &name {
                    if let Some(c) = self.open_existing(n, handle_access(req.protect))? {
                        return Ok(c);
                    }
                }
                self.new_pagefile_section(&req, size, name.as_ref())?
            }
            SectionSource::File(h) => {
                let entry = self.handles().get(h)?;
                let file = entry.file()?.clone();
                // The handle's access (a duplicate may have less than the open).
                let access = crate::os::linux::files::map_generic(entry.access);
                let (r, w, x) = file_access_needed(req.protect);
                if (r && access & FILE_READ_DATA == 0)
                    || (w && access & (FILE_WRITE_DATA | FILE_APPEND_DATA) == 0)
                    || (x && access & FILE_EXECUTE == 0)
                {
                    return Err(Error::AccessDenied(
                        "the file's access does not allow the section's protection",
                    ));
                }
                if req.image {
                    return Err(if crate::os::linux::sections::is_pe_image(file.raw_fd()) {
                        Error::NotSupported("virtmem loads no PE images (SEC_IMAGE)")
                    } else {
                        Error::BadExeFormat
                    });
                }
                // CF11: the file's size is checked before the name is looked up.
                let file_size = file.size()?;
                let writable = matches!(req.protect, PAGE_READWRITE | PAGE_EXECUTE_READWRITE);
                if size == 0 && file_size == 0 {
                    return Err(Error::FileInvalid);
                }
                if size > file_size && !writable {
                    return Err(Error::NotEnoughMemory(
                        "a section without write access cannot be larger than its file",
                    ));
                }
                if let Some(n) = &name {
                    if let Some(c) = self.open_existing(n, handle_access(req.protect))? {
                        return Ok(c);
                    }
                }
                self.new_file_section(&req, size, &file, name.as_ref())?
            }
        };
        let (section, existed) = section;
        let access = handle_access(section.protect);
        let handle = self.open_handle(&section, access);
        Ok(Created { handle, existed })
    }

    /// OpenFileMapping: a handle with `access` to the section of that name (2 if none).
    pub fn open_section(&self, access: u32, name: Result<Option<ObjectName>>) -> Result<usize> {
        let Some(name) = name? else {
            return Err(Error::InvalidParameter("OpenFileMapping needs a name"));
        };
        // OF2: FILE_MAP_COPY alone is taken as FILE_MAP_READ.
        let access = if access == FILE_MAP_COPY {
            FILE_MAP_READ
        } else {
            access
        };
        let _serial = self.names.serial();
        match self.open_existing(&name, access)? {
            Some(c) => Ok(c.handle),
            None => Err(Error::FileNotFound("no section of that name")),
        }
    }

    /// A handle to the section called `name`, from this process's registry or, on real
    /// memory, from another process: `None` if no section has the name.
    fn open_existing(&self, name: &ObjectName, access: u32) -> Result<Option<Created>> {
        if let Some(s) = self.lookup_name(name) {
            let handle = self.open_handle(&s, access);
            return Ok(Some(Created {
                handle,
                existed: true,
            }));
        }
        if !self.os.real_memory() {
            return Ok(None);
        }
        crate::os::linux::names::sweep_stale();
        let obj = match NamedObject::open(name) {
            Ok(o) => o,
            Err(crate::os::linux::names::NameError::FileNotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let s = self.section_from_named(name, obj)?;
        let handle = self.open_handle(&s, access);
        Ok(Some(Created {
            handle,
            existed: true,
        }))
    }

    /// This process's section of that name, if it still has a handle.
    fn lookup_name(&self, name: &ObjectName) -> Option<Arc<Section>> {
        let map = self.names.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name)
            .filter(|s| s.handles.load(Ordering::Acquire) > 0)
            .cloned()
    }

    /// Opens a handle to `s` (counting it).
    fn open_handle(&self, s: &Arc<Section>, access: u32) -> usize {
        s.refs.fetch_add(1, Ordering::AcqRel);
        s.handles.fetch_add(1, Ordering::AcqRel);
        self.handles().insert(Entry {
            object: Object::Section(s.clone()),
            access,
        })
    }

    fn section(
        &self,
        req: &CreateSection,
        size: u64,
        backing: BackingId,
        data_offset: u64,
        file: Option<std::path::PathBuf>,
    ) -> Section {
        Section {
            size,
            protect: req.protect,
            attributes: req.attributes(file.is_some()),
            modifiers: req.modifiers,
            backing,
            data_offset,
            file_backed: file.is_some(),
            // A file section's pages are the file's: always committed (O1: SEC_RESERVE is
            // dropped, the section is SEC_FILE).
            reserve: req.reserve && file.is_none(),
            large_page: if req.large_pages {
                self.layout.large_page_size
            } else {
                0
            },
            label: Mutex::new(file.as_ref().map(|p| p.display().to_string())),
            refs: AtomicUsize::new(0),
            handles: AtomicUsize::new(0),
            name: Mutex::new(None),
        }
    }

    /// Registers `s` under `name` (with the process's hold on the shared object).
    fn register(&self, s: Section, name: Option<&ObjectName>, hold: Option<NamedObject>) -> Arc<Section> {
        if let Some(n) = name {
            *s.name.lock().unwrap_or_else(|e| e.into_inner()) = Some((n.clone(), hold));
            let mut label = s.label.lock().unwrap_or_else(|e| e.into_inner());
            if label.as_deref().is_none_or(str::is_empty) {
                let ns = match n.ns {
                    crate::os::linux::names::Namespace::Local => "Local",
                    crate::os::linux::names::Namespace::Global => "Global",
                };
                *label = Some(format!("{ns}\\{}", n.name));
            }
        }
        let s = Arc::new(s);
        if let Some(n) = name {
            let mut map = self.names.map.lock().unwrap_or_else(|e| e.into_inner());
            map.insert(n.clone(), s.clone());
        }
        s
    }

    /// CF7 and §15: a pagefile-backed section, named or not.
    fn new_pagefile_section(
        &self,
        req: &CreateSection,
        size: u64,
        name: Option<&ObjectName>,
    ) -> Result<(Arc<Section>, bool)> {
        let p = self.page() as u64;
        let size = size
            .checked_next_multiple_of(p)
            .ok_or(Error::InvalidParameter("the size overflows"))?;
        if size > isize::MAX as u64 {
            return Err(Error::NotEnoughMemory("the section is larger than the address space"));
        }
        let large = if req.large_pages {
            let lp = self.layout.large_page_size;
            if lp == 0 {
                return Err(Error::NotSupported("this system has no large pages"));
            }
            if size % lp as u64 != 0 {
                return Err(Error::InvalidParameter(
                    "SEC_LARGE_PAGES needs a size that is a multiple of GetLargePageMinimum()",
                ));
            }
            Some(lp)
        } else {
            None
        };
        if let (Some(n), true) = (name, self.os.real_memory() && large.is_none()) {
            // Shared with other processes of this user: a named object.
            crate::os::linux::names::sweep_stale();
            let header = SharedHeader {
                size,
                protect: req.protect,
                attributes: req.attributes(false),
                file: None,
            };
            let (obj, created) = NamedObject::create_or_open(n, &header).map_err(Error::from)?;
            return Ok((self.section_from_named(n, obj)?, !created));
        }
        let backing = self
            .os
            .backing_new(size, large, !req.reserve)
            .map_err(|e| large_error(e, large.is_some()))?;
        Ok((
            self.register(self.section(req, size, backing, 0, None), name, None),
            false,
        ))
    }

    /// A section of this process for a named object (created here or elsewhere).
    fn section_from_named(&self, name: &ObjectName, obj: NamedObject) -> Result<Arc<Section>> {
        let h = obj.header().clone();
        let req = CreateSection {
            protect: h.protect,
            reserve: h.attributes & SEC_RESERVE != 0,
            large_pages: false,
            modifiers: (if h.attributes & SEC_NOCACHE != 0 {
                PAGE_NOCACHE
            } else {
                0
            }) | (if h.attributes & SEC_WRITECOMBINE != 0 {
                PAGE_WRITECOMBINE
            } else {
                0
            }),
            image: false,
        };
        let (backing, data_offset, path, size) = match &h.file {
            None => {
                let fd = obj.data_fd().map_err(Error::from)?;
                let b = self
                    .os
                    .backing_adopt_fd(std::os::fd::IntoRawFd::into_raw_fd(fd))
                    .map_err(Error::from_os)?;
                (b, obj.data_offset(), None, h.size)
            }
            Some(id) => {
                let writable = matches!(h.protect, PAGE_READWRITE | PAGE_EXECUTE_READWRITE);
                let fd = crate::os::linux::sections::open_file_for_section(
                    &id.path, id.dev, id.ino, writable,
                )
                .map_err(|e| match e {
                    crate::os::linux::sections::FileOpen::Gone => {
                        Error::FileNotFound("the section's file is gone or was replaced")
                    }
                    crate::os::linux::sections::FileOpen::Locked => Error::Code(33),
                })?;
                let b = self
                    .os
                    .backing_adopt_fd(std::os::fd::IntoRawFd::into_raw_fd(fd))
                    .map_err(Error::from_os)?;
                (b, 0, Some(id.path.clone()), h.size)
            }
        };
        let mut s = self.section(&req, size, backing, data_offset, path.clone());
        s.attributes = h.attributes;
        s.file_backed = path.is_some();
        Ok(self.register(s, Some(name), Some(obj)))
    }

    /// CF5, CF6: a section of a file.
    fn new_file_section(
        &self,
        req: &CreateSection,
        size: u64,
        file: &Arc<crate::os::linux::files::HostFile>,
        name: Option<&ObjectName>,
    ) -> Result<(Arc<Section>, bool)> {
        let writable = matches!(req.protect, PAGE_READWRITE | PAGE_EXECUTE_READWRITE);
        let fd = file.reopen_for_section(writable)?;
        let backing = self
            .os
            .backing_adopt_fd(std::os::fd::IntoRawFd::into_raw_fd(fd))
            .map_err(Error::from_os)?;
        let fail = |e: Error| {
            self.os.backing_close(backing);
            Err(e)
        };
        let file_size = match self.os.backing_size(backing) {
            Ok(s) => s,
            Err(e) => return fail(Error::from_os(e)),
        };
        let size = if size == 0 {
            if file_size == 0 {
                return fail(Error::FileInvalid);
            }
            file_size
        } else {
            size
        };
        if size > file_size {
            if !writable {
                return fail(Error::NotEnoughMemory(
                    "a section without write access cannot be larger than its file",
                ));
            }
            if let Err(e) = self.os.backing_set_size(backing, size) {
                return fail(match e.kind {
                    crate::os::OsErrorKind::NoSpace => Error::DiskFull,
                    _ => Error::InvalidParameter("the file cannot be that large"),
                });
            }
        }
        let path = file.path().ok();
        let mut hold = None;
        if let (Some(n), true) = (name, self.os.real_memory()) {
            crate::os::linux::names::sweep_stale();
            let (dev, ino) = file.identity();
            let header = SharedHeader {
                size,
                protect: req.protect,
                attributes: req.attributes(true),
                file: path.clone().map(|path| crate::os::linux::names::FileIdentity {
                    path,
                    dev,
                    ino,
                }),
            };
            match NamedObject::create_or_open(n, &header) {
                Ok((obj, true)) => hold = Some(obj),
                Ok((obj, false)) => {
                    // Another process created the name meanwhile: its section wins.
                    self.os.backing_close(backing);
                    return Ok((self.section_from_named(n, obj)?, true));
                }
                Err(e) => return fail(e.into()),
            }
        }
        let s = self.section(req, size, backing, 0, path.or(Some(std::path::PathBuf::new())));
        Ok((self.register(s, name, hold), false))
    }

    /// A handle to `s` was closed: the name goes with the last handle (NS2), the section with
    /// the last handle or view (O3).
    pub(crate) fn section_handle_closed(&self, s: &Arc<Section>) {
        let _serial = self.names.serial();
        if s.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            let named = s.name.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some((n, hold)) = named {
                let mut map = self.names.map.lock().unwrap_or_else(|e| e.into_inner());
                if map.get(&n).is_some_and(|x| Arc::ptr_eq(x, s)) {
                    map.remove(&n);
                }
                drop(map);
                drop(hold);
            }
        }
        self.section_unref(s);
    }

    /// A view of `s` now refers to it.
    pub(crate) fn section_ref(&self, s: &Arc<Section>) {
        s.refs.fetch_add(1, Ordering::AcqRel);
    }

    /// A handle or view of `s` went away; the last one closes the backing object.
    pub(crate) fn section_unref(&self, s: &Arc<Section>) {
        if s.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.os.backing_close(s.backing);
        }
    }

    /// DuplicateHandle of a section, file or process handle: a new handle to the same object with
    /// `access` (or the source's, with `same_access`); `close_source` closes the source.
    pub fn duplicate_handle(
        &self,
        h: usize,
        access: u32,
        same_access: bool,
        close_source: bool,
    ) -> Result<usize> {
        // ---- Other processes: a process handle's new access is granted as OpenProcess
        // grants it (the kernel is asked again whether this process may trace it).
        let access = match self.handles().get(h)?.object {
            Object::Process(p) if !same_access => match self.grant_process_access(&p, access) {
                Ok(a) => a,
                Err(e) => {
                    if close_source {
                        let _ = self.close_handle(h);
                    }
                    return Err(e);
                }
            },
            _ => access,
        };
        // The new handle's counts are taken while the source is certainly open (under the
        // table's lock): a CloseHandle of the source racing this call cannot end the
        // section. With DUPLICATE_CLOSE_SOURCE the source's counts move to the new handle.
        if close_source {
            // The source's counts move to the new handle, which gets a value of its own.
            return self.handles().move_to_new(h, |e| {
                if !same_access {
                    e.access = access;
                }
            });
        }
        let entry = self.handles().with(h, |e| {
            if let Object::Section(s) = &e.object {
                s.refs.fetch_add(1, Ordering::AcqRel);
                s.handles.fetch_add(1, Ordering::AcqRel);
            }
            e.clone()
        })?;
        let access = if same_access { entry.access } else { access };
        let new = self.handles().insert(Entry {
            object: entry.object,
            access,
        });
        Ok(new)
    }

    /// For the address-space map: the label of the view containing `addr` (its file's path
    /// or its section's name), if `addr` is in a view and the section has one.
    pub fn view_label(&self, addr: usize) -> Option<String> {
        let a = self.find(addr)?;
        let v = a.view.as_ref()?;
        let label = v.section.label.lock().unwrap_or_else(|e| e.into_inner());
        label.clone().filter(|l| !l.is_empty())
    }

    /// The names registry (for the fork machinery).
    pub(crate) fn section_names(&self) -> &Names {
        &self.names
    }
}

/// The error of a failed pagefile backing: for large pages, 1314 (no right to the huge-page
/// pool) or 1450 (the pool cannot supply them), never silently small pages.
fn large_error(e: crate::os::OsError, large: bool) -> Error {
    if !large {
        return Error::from_os(e);
    }
    match e.kind {
        crate::os::OsErrorKind::LockQuota => {
            Error::PrivilegeNotHeld("the huge-page pool is not available to this user")
        }
        _ => Error::NoSystemResources("the huge-page pool has too few free pages"),
    }
}
