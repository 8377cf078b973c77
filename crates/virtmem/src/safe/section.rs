//! Sections and views in the safe face: section handles closed when dropped ([`Section`]),
//! views unmapped when dropped ([`View`], [`UniqueView`]), a growable shared buffer over a
//! SEC_RESERVE section ([`GrowableView`]) and a growable mapped file ([`GrowableFile`]).
//!
//! The reasoning that decides what each type lends is in [`View`]'s documentation (public,
//! where users read it): views of shared sections lend no plain slices in safe code.

use super::{native, Reservation};
use crate::engine::section::Section as SectionObject;
use crate::engine::{
    as_owner, HandleEntry, HandleObject, MapRequest, MemoryInfo, SectionSource, State,
};
use crate::error::{Error, Result};
use crate::os::linux::files::HostFile;
use crate::os::linux::names::{parse_name_w, ObjectName};
use crate::rules::protection::{readable, writable};
use crate::vocab::consts::*;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// The GENERIC_* rights of a file handle (`sections.md` CF5).
const GENERIC_READ: u32 = 0x8000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;
const GENERIC_EXECUTE: u32 = 0x2000_0000;

/// The page protection of a section (`sections.md` CF2): one of the six a section may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SectionProtect {
    /// PAGE_READONLY: read-only and copy-on-write views.
    ReadOnly,
    /// PAGE_READWRITE: any view but executable ones.
    ReadWrite,
    /// PAGE_WRITECOPY: read-only and copy-on-write views (a file needs only read access).
    WriteCopy,
    /// PAGE_EXECUTE_READ: read-only, copy-on-write and executable read-only views.
    ExecuteRead,
    /// PAGE_EXECUTE_READWRITE: every kind of view.
    ExecuteReadWrite,
    /// PAGE_EXECUTE_WRITECOPY: read-only and copy-on-write views, executable or not.
    ExecuteWriteCopy,
}

impl SectionProtect {
    /// The Win32 value.
    ///
    /// ```
    /// use virtmem::{SectionProtect, win32::PAGE_WRITECOPY};
    /// assert_eq!(SectionProtect::WriteCopy.win32(), PAGE_WRITECOPY);
    /// ```
    pub const fn win32(self) -> u32 {
        match self {
            SectionProtect::ReadOnly => PAGE_READONLY,
            SectionProtect::ReadWrite => PAGE_READWRITE,
            SectionProtect::WriteCopy => PAGE_WRITECOPY,
            SectionProtect::ExecuteRead => PAGE_EXECUTE_READ,
            SectionProtect::ExecuteReadWrite => PAGE_EXECUTE_READWRITE,
            SectionProtect::ExecuteWriteCopy => PAGE_EXECUTE_WRITECOPY,
        }
    }

    /// The protection of a Win32 value, if it is one of the six.
    ///
    /// ```
    /// use virtmem::SectionProtect;
    /// assert_eq!(SectionProtect::from_win32(0x04), Some(SectionProtect::ReadWrite));
    /// assert_eq!(SectionProtect::from_win32(0x01), None); // PAGE_NOACCESS
    /// ```
    pub const fn from_win32(v: u32) -> Option<SectionProtect> {
        Some(match v {
            PAGE_READONLY => SectionProtect::ReadOnly,
            PAGE_READWRITE => SectionProtect::ReadWrite,
            PAGE_WRITECOPY => SectionProtect::WriteCopy,
            PAGE_EXECUTE_READ => SectionProtect::ExecuteRead,
            PAGE_EXECUTE_READWRITE => SectionProtect::ExecuteReadWrite,
            PAGE_EXECUTE_WRITECOPY => SectionProtect::ExecuteWriteCopy,
            _ => return None,
        })
    }
}

/// What a view may do with its pages: its protection, and the rights a section handle needs
/// to map it (`sections.md` MV1, MV2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ViewAccess {
    /// FILE_MAP_READ: a read-only view (PAGE_READONLY).
    Read,
    /// FILE_MAP_READ | FILE_MAP_WRITE: a read-write view of the shared pages
    /// (PAGE_READWRITE).
    ReadWrite,
    /// FILE_MAP_COPY: a copy-on-write view (PAGE_WRITECOPY): the first write to a page gives
    /// this view a private copy of it, seen by nobody else.
    CopyOnWrite,
    /// FILE_MAP_READ | FILE_MAP_EXECUTE (PAGE_EXECUTE_READ).
    ExecuteRead,
    /// FILE_MAP_WRITE | FILE_MAP_EXECUTE (PAGE_EXECUTE_READWRITE).
    ExecuteReadWrite,
    /// FILE_MAP_COPY | FILE_MAP_EXECUTE (PAGE_EXECUTE_WRITECOPY).
    ExecuteCopyOnWrite,
}

impl ViewAccess {
    /// The `dwDesiredAccess` of MapViewOfFile that maps such a view.
    ///
    /// ```
    /// use virtmem::{ViewAccess, win32::*};
    /// assert_eq!(ViewAccess::CopyOnWrite.file_map(), FILE_MAP_COPY);
    /// assert_eq!(ViewAccess::ReadWrite.file_map(), FILE_MAP_READ | FILE_MAP_WRITE);
    /// ```
    pub const fn file_map(self) -> u32 {
        match self {
            ViewAccess::Read => FILE_MAP_READ,
            ViewAccess::ReadWrite => FILE_MAP_READ | FILE_MAP_WRITE,
            ViewAccess::CopyOnWrite => FILE_MAP_COPY,
            ViewAccess::ExecuteRead => FILE_MAP_READ | FILE_MAP_EXECUTE,
            ViewAccess::ExecuteReadWrite => FILE_MAP_READ | FILE_MAP_WRITE | FILE_MAP_EXECUTE,
            ViewAccess::ExecuteCopyOnWrite => FILE_MAP_COPY | FILE_MAP_EXECUTE,
        }
    }

    /// The page protection such a view has (its AllocationProtect).
    ///
    /// ```
    /// use virtmem::{ViewAccess, win32::PAGE_WRITECOPY};
    /// assert_eq!(ViewAccess::CopyOnWrite.protect(), PAGE_WRITECOPY);
    /// ```
    pub const fn protect(self) -> u32 {
        match self {
            ViewAccess::Read => PAGE_READONLY,
            ViewAccess::ReadWrite => PAGE_READWRITE,
            ViewAccess::CopyOnWrite => PAGE_WRITECOPY,
            ViewAccess::ExecuteRead => PAGE_EXECUTE_READ,
            ViewAccess::ExecuteReadWrite => PAGE_EXECUTE_READWRITE,
            ViewAccess::ExecuteCopyOnWrite => PAGE_EXECUTE_WRITECOPY,
        }
    }

    /// The access of a view protection, if it is one a view can be mapped with (other than
    /// PAGE_NOACCESS).
    fn from_protect(p: u32) -> Option<ViewAccess> {
        Some(match p & 0xFF {
            PAGE_READONLY => ViewAccess::Read,
            PAGE_READWRITE => ViewAccess::ReadWrite,
            PAGE_WRITECOPY => ViewAccess::CopyOnWrite,
            PAGE_EXECUTE_READ => ViewAccess::ExecuteRead,
            PAGE_EXECUTE_READWRITE => ViewAccess::ExecuteReadWrite,
            PAGE_EXECUTE_WRITECOPY => ViewAccess::ExecuteCopyOnWrite,
            _ => return None,
        })
    }

    /// The rights a section handle opened for this access gets (`sections.md` MV2).
    const fn handle_rights(self) -> u32 {
        let base = SECTION_QUERY | SECTION_MAP_READ;
        match self {
            ViewAccess::Read | ViewAccess::CopyOnWrite => base,
            ViewAccess::ReadWrite => base | SECTION_MAP_WRITE,
            ViewAccess::ExecuteRead | ViewAccess::ExecuteCopyOnWrite => base | SECTION_MAP_EXECUTE,
            ViewAccess::ExecuteReadWrite => base | SECTION_MAP_WRITE | SECTION_MAP_EXECUTE,
        }
    }
}

/// The parsed form of a section name given to the safe face: `Local\` or `Global\` may lead
/// it; it must not be empty (nor be a prefix alone), hold a NUL, or a `\` after the prefix.
fn object_name(name: &str) -> Result<ObjectName> {
    if name.contains('\0') {
        return Err(Error::InvalidParameter("a section name cannot contain NUL"));
    }
    let units: Vec<u16> = name.encode_utf16().collect();
    match parse_name_w(&units)? {
        Some(n) if !n.name.is_empty() => Ok(n),
        _ => Err(Error::InvalidParameter("a section name cannot be empty")),
    }
}

/// How to create a pagefile-backed section: size, protection, SEC_RESERVE, large pages.
///
/// ```
/// use virtmem::{SectionOptions, SectionProtect, ViewAccess};
/// let s = SectionOptions::new(1 << 20)
///     .protection(SectionProtect::ReadWrite)
///     .reserve(true) // pages are committed later, through views
///     .create()?;
/// assert!(s.is_reserve());
/// let v = s.map(0, 0, ViewAccess::ReadWrite)?;
/// v.commit(0, 4096)?;
/// v.write(0, b"hi")?;
/// # Ok::<(), virtmem::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionOptions {
    size: u64,
    protection: SectionProtect,
    reserve: bool,
    large_pages: bool,
}

impl SectionOptions {
    /// A section of `size` bytes (rounded up to pages), PAGE_READWRITE, SEC_COMMIT.
    pub const fn new(size: u64) -> SectionOptions {
        SectionOptions {
            size,
            protection: SectionProtect::ReadWrite,
            reserve: false,
            large_pages: false,
        }
    }

    /// The section's page protection (default [`SectionProtect::ReadWrite`]).
    pub const fn protection(mut self, p: SectionProtect) -> SectionOptions {
        self.protection = p;
        self
    }

    /// SEC_RESERVE: the pages start reserved in every view and are committed through any
    /// view ([`View::commit`]), for every view of the section at once.
    pub const fn reserve(mut self, yes: bool) -> SectionOptions {
        self.reserve = yes;
        self
    }

    /// SEC_LARGE_PAGES: committed at once from the kernel's huge-page pool; the size must be
    /// a multiple of [`SystemInfo::large_page_minimum`](crate::SystemInfo), and so must the
    /// offset and length of every view. Fails with [`Error::PrivilegeNotHeld`] or
    /// [`Error::NoSystemResources`] when the pool cannot be used, never falling back to
    /// small pages. Not with [`SectionOptions::reserve`].
    ///
    /// ```
    /// use virtmem::{Error, SectionOptions, ViewAccess};
    /// let lp = virtmem::system_info().large_page_minimum;
    /// match SectionOptions::new(lp as u64).large_pages(true).create() {
    ///     Ok(s) => s.map(0, 0, ViewAccess::ReadWrite)?.write(0, &[1])?,
    ///     Err(Error::NoSystemResources(_) | Error::PrivilegeNotHeld(_) | Error::NotSupported(_)) => {}
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub const fn large_pages(mut self, yes: bool) -> SectionOptions {
        self.large_pages = yes;
        self
    }

    /// CreateFileMapping's `flProtect` for these options.
    const fn fl_protect(&self) -> u32 {
        let sec = if self.reserve {
            SEC_RESERVE
        } else {
            SEC_COMMIT
        };
        let large = if self.large_pages { SEC_LARGE_PAGES } else { 0 };
        self.protection.win32() | sec | large
    }

    /// Creates an unnamed section with these options.
    pub fn create(&self) -> Result<Section> {
        Section::create(SectionSource::Pagefile, self.fl_protect(), self.size, None).map(|(s, _)| s)
    }

    /// Creates a section called `name` (`Local\…` or `Global\…`), shared with the processes
    /// of this user that open the same name, or — when a section of that name exists —
    /// opens that one (whose size and protection it has; these options are then ignored).
    /// Returns the section and whether the name existed (ERROR_ALREADY_EXISTS).
    pub fn create_named(&self, name: &str) -> Result<(Section, bool)> {
        let name = object_name(name)?;
        Section::create(
            SectionSource::Pagefile,
            self.fl_protect(),
            self.size,
            Some(name),
        )
    }
}

/// A section (file mapping object) of this process: owns one handle to it, closed when
/// dropped. The section itself lives on while a view of it is mapped (`sections.md` O3), so
/// views do not borrow it.
///
/// ```
/// use virtmem::{Section, ViewAccess};
/// let s = Section::new(65536)?;
/// let a = s.map(0, 0, ViewAccess::ReadWrite)?;
/// let b = s.map(0, 0, ViewAccess::Read)?;
/// a.write(100, b"shared")?;
/// drop(s); // the views keep the section alive
/// let mut buf = [0; 6];
/// b.read(100, &mut buf)?;
/// assert_eq!(&buf, b"shared");
/// # Ok::<(), virtmem::Error>(())
/// ```
pub struct Section {
    handle: usize,
    /// The engine's object, to recognize our handle (a handle value closed behind our back
    /// may be given out again) and for its facts.
    object: Arc<SectionObject>,
}

impl std::fmt::Debug for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Section")
            .field("handle", &self.handle)
            .field("size", &self.object.size)
            .field("protect", &self.object.protect)
            .field("reserve", &self.object.reserve)
            .field("file_backed", &self.object.file_backed)
            .finish()
    }
}

impl Section {
    /// An unnamed pagefile-backed section of `size` bytes (rounded up to pages): SEC_COMMIT,
    /// PAGE_READWRITE, zero-filled. See [`SectionOptions`] for the others.
    ///
    /// ```
    /// let s = virtmem::Section::new(10_000)?;
    /// assert_eq!(s.size(), 12288);
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn new(size: u64) -> Result<Section> {
        SectionOptions::new(size).create()
    }

    /// A pagefile-backed section called `name` (`Local\…` or `Global\…`), SEC_COMMIT,
    /// PAGE_READWRITE, or the existing section of that name. Returns whether the name
    /// existed. The name lives while a handle to the section does, in any process
    /// (`sections.md` NS2).
    ///
    /// ```
    /// # fn main() -> virtmem::Result<()> {
    /// # let r = (|| -> virtmem::Result<()> {
    /// use virtmem::{Section, ViewAccess};
    /// let name = format!("Local\\virtmem-doc-{}", std::process::id());
    /// let (a, existed) = Section::create_named(&name, 4096)?;
    /// assert!(!existed);
    /// let (b, existed) = Section::create_named(&name, 4096)?;
    /// assert!(existed); // the same section
    /// a.map(0, 0, ViewAccess::ReadWrite)?.write(0, b"x")?;
    /// let mut buf = [0];
    /// b.map(0, 0, ViewAccess::Read)?.read(0, &mut buf)?;
    /// assert_eq!(&buf, b"x");
    /// # Ok(()) })();
    /// # match r { Err(virtmem::Error::NotSupported(_)) => Ok(()), r => r } }
    /// ```
    pub fn create_named(name: &str, size: u64) -> Result<(Section, bool)> {
        SectionOptions::new(size).create_named(name)
    }

    /// OpenFileMapping: a handle to the section called `name`, with the rights to map views
    /// of `access` (and the weaker ones). Fails with [`Error::FileNotFound`] when no section
    /// has the name.
    ///
    /// ```
    /// use virtmem::{Error, Section, ViewAccess};
    /// let e = Section::open("Local\\virtmem-no-such-section", ViewAccess::Read).unwrap_err();
    /// assert!(matches!(e, Error::FileNotFound(_)));
    /// ```
    pub fn open(name: &str, access: ViewAccess) -> Result<Section> {
        let name = object_name(name)?;
        let h = native().open_section(access.handle_rights(), Ok(Some(name)))?;
        Section::adopt(h)
    }

    /// A section of `file`: `size` bytes (0: the file's size; a larger size extends the file
    /// when `protection` allows writing, else fails with [`Error::NotEnoughMemory`]). The file
    /// must be open for reading, and for writing when `protection` writes
    /// ([`Error::AccessDenied`]); executable protections need only read access here. The
    /// section keeps its own descriptor of the file: `file` may be closed afterwards.
    ///
    /// ```
    /// # fn main() -> virtmem::Result<()> {
    /// # let r = (|| -> virtmem::Result<()> {
    /// use std::io::Write;
    /// use virtmem::{Section, SectionProtect, ViewAccess};
    /// let path = std::env::temp_dir().join(format!("virtmem-doc-{}", std::process::id()));
    /// let mut f = std::fs::File::options().read(true).write(true).create(true).truncate(true)
    ///     .open(&path).unwrap();
    /// f.write_all(b"hello, file").unwrap();
    /// let s = Section::from_file(&f, SectionProtect::ReadOnly, 0)?;
    /// assert_eq!(s.size(), 11); // to the byte
    /// let mut buf = [0; 5];
    /// s.map(0, 0, ViewAccess::Read)?.read(0, &mut buf)?;
    /// assert_eq!(&buf, b"hello");
    /// # Ok(()) })();
    /// # let _ = std::fs::remove_file(std::env::temp_dir().join(format!("virtmem-doc-{}", std::process::id())));
    /// # match r { Err(virtmem::Error::NotSupported(_)) => Ok(()), r => r } }
    /// ```
    pub fn from_file(
        file: &std::fs::File,
        protection: SectionProtect,
        size: u64,
    ) -> Result<Section> {
        let fh = FileHandle::new(file)?;
        Section::create(
            SectionSource::File(fh.handle),
            protection.win32(),
            size,
            None,
        )
        .map(|(s, _)| s)
    }

    fn create(
        source: SectionSource,
        fl_protect: u32,
        size: u64,
        name: Option<ObjectName>,
    ) -> Result<(Section, bool)> {
        let c = native().create_section(source, fl_protect, size, Ok(name))?;
        Ok((Section::adopt(c.handle)?, c.existed))
    }

    /// Takes ownership of the section handle `h` (closing it if it is not one).
    fn adopt(h: usize) -> Result<Section> {
        let s = native();
        match s.handles().get(h)?.object {
            HandleObject::Section(object) => Ok(Section { handle: h, object }),
            HandleObject::File(_)
            | HandleObject::MemoryNotification(_)
            | HandleObject::Process(_) => {
                let _ = s.close_handle(h);
                Err(Error::InvalidHandle)
            }
        }
    }

    /// The size in bytes: page-rounded for pagefile-backed sections, to the byte for files.
    pub fn size(&self) -> u64 {
        self.object.size
    }

    /// The section's page protection.
    pub fn protection(&self) -> SectionProtect {
        SectionProtect::from_win32(self.object.protect).unwrap_or(SectionProtect::ReadOnly)
    }

    /// Whether the section is SEC_RESERVE (pages are committed through views).
    pub fn is_reserve(&self) -> bool {
        self.object.reserve
    }

    /// Whether the section is backed by a file (else by the paging file).
    pub fn is_file_backed(&self) -> bool {
        self.object.file_backed
    }

    /// The Win32 handle, for the `unsafe` Win32 face (MapViewOfFile, DuplicateHandle…). It
    /// stays this value's: closing it through the Win32 face makes this value's drop a no-op.
    pub fn raw_handle(&self) -> HANDLE {
        self.handle as HANDLE
    }

    /// A second handle to the same section (DuplicateHandle, same access).
    ///
    /// ```
    /// let a = virtmem::Section::new(4096)?;
    /// let b = a.try_clone()?;
    /// drop(a);
    /// assert_eq!(b.size(), 4096);
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn try_clone(&self) -> Result<Section> {
        self.check_handle()?;
        let h = native().duplicate_handle(self.handle, 0, true, false)?;
        Section::adopt(h)
    }

    /// MapViewOfFile: maps `len` bytes of the section from `offset` (a multiple of 64 KiB;
    /// `len` 0 = to the section's end), rounded up to pages, anywhere in the address space.
    /// The handle must allow `access` (a section's protection decides which views it allows,
    /// `sections.md` MV2), else [`Error::AccessDenied`].
    ///
    /// ```
    /// use virtmem::{Error, Section, ViewAccess};
    /// let s = Section::new(3 * 65536)?;
    /// let v = s.map(65536, 4096, ViewAccess::ReadWrite)?;
    /// assert_eq!(v.len(), 4096);
    /// assert!(matches!(s.map(1, 4096, ViewAccess::Read), Err(Error::MappedAlignment(_))));
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn map(&self, offset: u64, len: usize, access: ViewAccess) -> Result<View> {
        self.check_handle()?;
        let base = native().map_view(MapRequest {
            handle: self.handle,
            protect: access.protect(),
            offset,
            size: len,
            base: None,
            replace_placeholder: false,
            highest_end: None,
        })?;
        View::adopt(base, access.protect())
    }

    /// Whether our handle still refers to our section.
    fn check_handle(&self) -> Result<()> {
        match native().handles().get(self.handle)?.object {
            HandleObject::Section(s) if Arc::ptr_eq(&s, &self.object) => Ok(()),
            _ => Err(Error::InvalidHandle),
        }
    }

    /// Closes the handle now (CloseHandle), reporting errors that `drop` would hide. Views
    /// keep working.
    pub fn close(mut self) -> Result<()> {
        self.close_now()
    }

    fn close_now(&mut self) -> Result<()> {
        // Only our own handle: one closed behind our back may have been given out again.
        self.check_handle()?;
        let h = std::mem::replace(&mut self.handle, 0);
        native().close_handle(h)
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        if self.handle != 0 {
            let _ = self.close_now();
        }
    }
}

/// A file handle of the engine's table for a `std::fs::File` (closed when dropped).
struct FileHandle {
    handle: usize,
    object: Arc<HostFile>,
}

impl FileHandle {
    /// A handle to a duplicate of `file`'s descriptor, with the access its open mode gives.
    fn new(file: &std::fs::File) -> Result<FileHandle> {
        use rustix::fs::OFlags;
        let dup = file
            .try_clone()
            .map_err(|e| io_error(&e, "duplicating the file's descriptor"))?;
        let mode =
            rustix::fs::fcntl_getfl(&dup).map_err(|_| Error::InvalidHandle)? & OFlags::RWMODE;
        let access = if mode == OFlags::RDWR {
            GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE
        } else if mode == OFlags::WRONLY {
            GENERIC_WRITE
        } else {
            GENERIC_READ | GENERIC_EXECUTE
        };
        let object = Arc::new(HostFile::from_std(dup, access).map_err(Error::from)?);
        let handle = native().handles().insert(HandleEntry {
            object: HandleObject::File(object.clone()),
            access,
        });
        Ok(FileHandle { handle, object })
    }
}

impl Drop for FileHandle {
    fn drop(&mut self) {
        let s = native();
        if let Ok(e) = s.handles().get(self.handle) {
            if matches!(&e.object, HandleObject::File(f) if Arc::ptr_eq(f, &self.object)) {
                let _ = s.close_handle(self.handle);
            }
        }
    }
}

/// The Win32 error for a failed `std` file call.
fn io_error(e: &std::io::Error, what: &'static str) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOSPC | libc::EFBIG) => Error::DiskFull,
        Some(libc::EACCES | libc::EPERM) => Error::AccessDenied(what),
        Some(libc::EMFILE | libc::ENFILE) => Error::Code(4), // ERROR_TOO_MANY_OPEN_FILES
        _ => Error::Code(31),                                // ERROR_GEN_FAILURE
    }
}

/// Copies bytes out of mapped memory with relaxed byte-sized atomic loads.
///
/// # Safety
///
/// `[src, src + dst.len())` is mapped and readable for the whole call.
unsafe fn load_bytes(src: usize, dst: &mut [u8]) {
    for (i, d) in dst.iter_mut().enumerate() {
        // SAFETY: the byte is mapped and readable (the caller's promise); `AtomicU8` has the
        // layout of `u8` and no alignment needs. A relaxed single-byte atomic load is allowed
        // on read-only memory, and atomic accesses never race with the other byte-sized
        // atomic accesses the safe face makes to the same memory.
        *d = unsafe { &*((src + i) as *const AtomicU8) }.load(Ordering::Relaxed);
    }
}

/// Copies bytes into mapped memory with relaxed byte-sized atomic stores.
///
/// # Safety
///
/// `[dst, dst + src.len())` is mapped and writable for the whole call, and no `&[u8]` or
/// `&mut [u8]` of it is alive.
unsafe fn store_bytes(dst: usize, src: &[u8]) {
    for (i, &b) in src.iter().enumerate() {
        // SAFETY: the byte is mapped and writable, and lent to no plain reference (the
        // caller's promise); an atomic store never races with the byte-sized atomic accesses
        // the safe face makes elsewhere.
        unsafe { &*((dst + i) as *const AtomicU8) }.store(b, Ordering::Relaxed);
    }
}

/// A mapped view of a section, unmapped when dropped (UnmapViewOfFile). Offsets are
/// relative to the view's base. Its bytes may be changed at any moment by others, so it
/// copies bytes in and out ([`View::read`], [`View::write`]) and lends atomic bytes
/// ([`View::atomic_bytes`]), never `&[u8]` in safe code — why, below.
///
/// # Lifetimes
///
/// A view keeps its section alive, as on Windows (`sections.md` O3): the engine counts views
/// as references to the section. So a [`View`] borrows nothing from the [`Section`] it was
/// mapped from: dropping the `Section` only closes its handle, and the view keeps working
/// until it is itself dropped (or [`View::unmap`]ped). Everything a view lends — byte slices,
/// atomic bytes — borrows the view, so the view cannot be unmapped while a loan is alive:
/// the compiler refuses it (`crates/virtmem-ui`).
///
/// # Why a shared view lends no `&[u8]`
///
/// A `&[u8]` promises that its bytes do not change while it lives, and a `&mut [u8]` that
/// nobody else reads or writes them. The bytes of a view can change at any moment through:
///
/// * another view of the same section — [`Section::map`] may be called any number of times,
///   and a named section can be mapped by other processes;
/// * the file behind a file-backed section (`std::fs::File::write` is a safe call);
/// * the section itself, for a copy-on-write view: its pages show the section's data until
///   this view first writes them (`sections.md` CW1), so not even a copy-on-write view is
///   private.
///
/// So no view of a section that anyone else can reach lends plain slices in safe code.
/// [`View`] copies bytes in and out ([`View::read`], [`View::write`]) and lends
/// `&[AtomicU8]` ([`View::atomic_bytes`]); every access the safe face makes to a view's bytes
/// is a **byte-sized atomic access**. Atomic accesses of one size never race in Rust's memory
/// model, so two threads using two views of one page (or one view from two threads) are
/// sound, and the byte size keeps `read`, `write` and `atomic_bytes` compatible with each
/// other (atomic writes racing with atomic accesses of another size are undefined
/// behaviour). Reads are relaxed atomic loads of single bytes, which Rust allows on read-only
/// memory too. Writes made by other processes, or by the kernel for file I/O, happen outside
/// this program: a byte-wise read sees each byte either before or after them. Code that
/// guarantees there is no concurrent writer can still borrow slices through the `unsafe`
/// [`View::as_slice`] and [`View::as_mut_slice`].
///
/// [`UniqueView`] is the one view that lends `&[u8]` / `&mut [u8]` in safe code: it creates
/// an unnamed pagefile-backed section for itself, maps it once and never lets its handle out
/// (until [`UniqueView::into_shared`], which gives up the slices). Nobody else can reach its
/// pages, so, as with [`Reservation`](crate::Reservation), `&self` / `&mut self` decide who
/// may see them.
///
/// # Pages
///
/// Every access checks that the pages are committed pages of this very view and readable
/// (writable, to write). Through the safe face a view's pages only ever become *more*
/// accessible: views cannot be decommitted (`sections.md` VF1), committing through a view
/// gives pages the view's own protection, and the safe face changes no protection. The
/// `unsafe` Win32 face can (VirtualProtect, UnmapViewOfFile): its callers answer for the
/// loans of the views whose pages they change. As with `Reservation`, each view acts only on
/// the allocation it owns (by id), so a range unmapped behind its back and reused by someone
/// else is never touched.
///
/// # Limits
///
/// * A file truncated behind virtmem's back (by `std::fs::File::set_len`, or by another
///   program) while it is mapped makes accesses to the pages past its new end raise SIGBUS,
///   which ends the process (unless the program handles SIGBUS itself): no access completes
///   with made-up data. virtmem's own file calls
///   refuse to shrink a file that has a section (`sections.md` FB3).
/// * A process forked with (the `unsafe`) `fork` shares `MAP_SHARED` views with its child,
///   a `UniqueView`'s included; whoever forks answers for the child's writes.
/// * Byte-wise atomic copies are slower than `memcpy` (about a byte per cycle).
///
/// # Example
///
/// ```
/// use std::sync::atomic::Ordering;
/// use virtmem::{Section, ViewAccess};
/// let s = Section::new(4096)?;
/// let a = s.map(0, 0, ViewAccess::ReadWrite)?;
/// let b = s.map(0, 0, ViewAccess::ReadWrite)?;
/// let flag = &a.atomic_bytes(0, 1)?[0];
/// b.write(0, &[1])?;
/// assert_eq!(flag.load(Ordering::Acquire), 1); // one page, two addresses
/// # Ok::<(), virtmem::Error>(())
/// ```
#[derive(Debug)]
pub struct View {
    base: usize,
    len: usize,
    id: u64,
    /// The view's protection (AllocationProtect, modifiers removed).
    protect: u32,
}

impl View {
    /// Takes ownership of the view just mapped at `base`.
    fn adopt(base: usize, protect: u32) -> Result<View> {
        let s = native();
        let a = s
            .find(base)
            .filter(|a| a.base == base)
            .ok_or(Error::InvalidAddress("unmapped concurrently"))?;
        Ok(View {
            base,
            len: a.size,
            id: a.id,
            protect,
        })
    }

    /// The view's base address. Reading or writing through it is `unsafe`: see
    /// [`View::as_slice`].
    pub fn as_ptr(&self) -> *mut u8 {
        self.base as *mut u8
    }

    /// The view's size in bytes (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a view has at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The access the view was mapped with.
    pub fn access(&self) -> ViewAccess {
        ViewAccess::from_protect(self.protect).unwrap_or(ViewAccess::Read)
    }

    /// Whether this view is still mapped (it may have been unmapped through the Win32 face).
    ///
    /// ```
    /// use virtmem::{Section, ViewAccess, win32::*};
    /// let v = Section::new(4096)?.map(0, 0, ViewAccess::Read)?;
    /// assert!(v.is_live());
    /// unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: v.as_ptr().cast() }) };
    /// assert!(!v.is_live()); // dropping it now does nothing
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn is_live(&self) -> bool {
        native().allocation_id(self.base) == Some(self.id)
    }

    /// The absolute address of `[offset, offset+len)`, checked against the view.
    fn span(&self, offset: usize, len: usize) -> Result<usize> {
        if !self.is_live() {
            return Err(Error::InvalidAddress("the view was unmapped"));
        }
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(self.base + offset),
            _ => Err(Error::InvalidParameter("range outside the view")),
        }
    }

    /// Checks that every page of the range is a committed page of this view, no guard page,
    /// and passes `ok` on its protection; with `stable`, also that no page was reset
    /// (MEM_RESET through the Win32 face). Returns the range's address.
    fn check(&self, offset: usize, len: usize, ok: fn(u32) -> bool, stable: bool) -> Result<usize> {
        let at = self.span(offset, len)?;
        if len == 0 {
            return Ok(at);
        }
        let end = at + len;
        let scan = || -> Result<bool> {
            let mut p = at;
            while p < end {
                let i = native().query(p)?;
                if !i.managed || i.allocation_base != self.base {
                    return Err(Error::InvalidAddress("the view was unmapped"));
                }
                if i.state != State::Commit || i.protect & PAGE_GUARD != 0 || !ok(i.protect) {
                    return Ok(false);
                }
                p = i.base_address + i.region_size;
            }
            Ok(true)
        };
        let mut fine = as_owner(self.id, scan)?;
        if !fine {
            // Pages of a SEC_RESERVE section may have been committed by another process.
            self.refresh();
            fine = as_owner(self.id, scan)?;
        }
        if !fine {
            return Err(Error::NoAccess(
                "the range has pages that are not committed or not accessible",
            ));
        }
        if stable && native().has_reset_pages(at, end) {
            return Err(Error::NoAccess("the range has pages reset by MEM_RESET"));
        }
        if !self.is_live() {
            return Err(Error::InvalidAddress("the view was unmapped"));
        }
        Ok(at)
    }

    /// Folds commits made elsewhere (other views, other processes) into this view's pages.
    fn refresh(&self) {
        let s = native();
        let _ = as_owner(self.id, || {
            s.with_allocation(self.base, Error::InvalidAddress("not a view"), |a| {
                s.sync_view(a);
                Ok(())
            })
        });
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`. The pages must be committed and
    /// readable ([`Error::NoAccess`] otherwise, e.g. not yet committed pages of a
    /// SEC_RESERVE section). Bytes are read one at a time with relaxed atomic loads: a write
    /// made meanwhile elsewhere may be seen in part.
    ///
    /// ```
    /// use virtmem::{Error, SectionOptions, ViewAccess};
    /// let v = SectionOptions::new(65536).reserve(true).create()?.map(0, 0, ViewAccess::ReadWrite)?;
    /// let mut buf = [0; 4];
    /// assert!(matches!(v.read(0, &mut buf), Err(Error::NoAccess(_)))); // reserved
    /// v.commit(0, 4)?;
    /// v.read(0, &mut buf)?;
    /// assert_eq!(buf, [0; 4]);
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let at = self.check(offset, buf.len(), readable, false)?;
        // SAFETY: every page is a committed readable page of this view, and stays mapped
        // and readable while `self` is borrowed (the safe face never makes a view's pages
        // less accessible; unmapping needs `self`).
        unsafe { load_bytes(at, buf) };
        Ok(())
    }

    /// Copies `data` to `offset`. The pages must be committed and writable
    /// ([`Error::NoAccess`] otherwise: read-only views refuse). Bytes are written one at a
    /// time with relaxed atomic stores; to publish them to another thread or process, end
    /// with a release store to a flag (see [`View::atomic_bytes`]).
    ///
    /// ```
    /// use virtmem::{Error, Section, ViewAccess};
    /// let s = Section::new(4096)?;
    /// s.map(0, 0, ViewAccess::ReadWrite)?.write(10, b"abc")?;
    /// let r = s.map(0, 0, ViewAccess::Read)?;
    /// assert!(matches!(r.write(10, b"x"), Err(Error::NoAccess(_))));
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<()> {
        let at = self.check(offset, data.len(), writable, false)?;
        // SAFETY: every page is a committed writable page of this view and stays so while
        // `self` is borrowed; a view lends no plain references in safe code (the `unsafe`
        // `as_slice` callers promise no such write happens meanwhile).
        unsafe { store_bytes(at, data) };
        Ok(())
    }

    /// The bytes of `[offset, offset+len)` as atomics, which must all be committed and
    /// writable (also copy-on-write: the first store to a page makes it private). The loan
    /// borrows the view, so the view cannot be unmapped while it lives.
    ///
    /// ```
    /// use std::sync::atomic::Ordering::*;
    /// use virtmem::{Section, ViewAccess};
    /// let s = Section::new(4096)?;
    /// let v = s.map(0, 0, ViewAccess::ReadWrite)?;
    /// let bytes = v.atomic_bytes(0, 16)?;
    /// bytes[3].store(9, Release);
    /// assert_eq!(bytes[3].fetch_add(1, AcqRel), 9);
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn atomic_bytes(&self, offset: usize, len: usize) -> Result<&[AtomicU8]> {
        let at = self.check(offset, len, writable, false)?;
        // SAFETY: every page is a committed writable page of this view and stays so while
        // `self` is borrowed (which the slice does); `AtomicU8` has `u8`'s layout and
        // alignment, and the safe face accesses these bytes only with byte-sized atomics.
        Ok(unsafe { std::slice::from_raw_parts(at as *const AtomicU8, len) })
    }

    /// The bytes of `[offset, offset+len)` as a plain slice; the pages must be committed and
    /// readable.
    ///
    /// # Safety
    ///
    /// While the slice lives nobody may write these bytes: not another view (of this or
    /// another process), not this view ([`View::write`], [`View::atomic_bytes`]), not file
    /// I/O on the section's file, and — for a copy-on-write view — no view writing the
    /// section's pages that this view has not copied yet.
    ///
    /// ```
    /// use virtmem::{Section, ViewAccess};
    /// let s = Section::new(4096)?;
    /// let v = s.map(0, 0, ViewAccess::ReadWrite)?;
    /// v.write(0, b"abc")?;
    /// // SAFETY: nothing else maps this section, and nothing writes it while `bytes` lives.
    /// let bytes = unsafe { v.as_slice(0, 3)? };
    /// assert_eq!(bytes, b"abc");
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub unsafe fn as_slice(&self, offset: usize, len: usize) -> Result<&[u8]> {
        let at = self.check(offset, len, readable, true)?;
        // SAFETY: committed readable pages of this view that stay so while `self` is
        // borrowed; the caller promises that nobody writes them meanwhile.
        Ok(unsafe { std::slice::from_raw_parts(at as *const u8, len) })
    }

    /// The bytes of `[offset, offset+len)` as a mutable slice; the pages must be committed
    /// and writable.
    ///
    /// # Safety
    ///
    /// While the slice lives nobody else may read or write these bytes: no other view (of
    /// this or another process), no file I/O on the section's file, and — unless this is a
    /// copy-on-write view whose pages the caller has already written — no view writing the
    /// section's pages.
    pub unsafe fn as_mut_slice(&mut self, offset: usize, len: usize) -> Result<&mut [u8]> {
        let at = self.check(offset, len, writable, true)?;
        // SAFETY: committed writable pages of this view; `&mut self` excludes this view's
        // other loans, and the caller promises that nobody else touches them meanwhile.
        Ok(unsafe { std::slice::from_raw_parts_mut(at as *mut u8, len) })
    }

    /// VirtualAlloc(MEM_COMMIT) through this view: commits the pages touched by
    /// `[offset, offset+len)` of a SEC_RESERVE section, with the view's own protection. The
    /// commit belongs to the section: every view of it, in every process, sees the pages
    /// committed (`sections.md` VA3), and they can never be decommitted. On a SEC_COMMIT
    /// view this changes nothing; a view of a file refuses it ([`Error::AccessDenied`]).
    ///
    /// ```
    /// use virtmem::{SectionOptions, State, ViewAccess};
    /// let s = SectionOptions::new(65536).reserve(true).create()?;
    /// let a = s.map(0, 0, ViewAccess::ReadWrite)?;
    /// let b = s.map(0, 0, ViewAccess::Read)?;
    /// a.commit(8192, 100)?;
    /// assert_eq!(b.query(8192)?.state, State::Commit);
    /// assert_eq!(b.query(0)?.state, State::Reserve);
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn commit(&self, offset: usize, len: usize) -> Result<()> {
        let at = self.span(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        let protect = self.protect;
        self.owned(|s| {
            s.virtual_alloc(
                at,
                len,
                MEM_COMMIT,
                protect,
                crate::rules::requests::AllocFlavor::default(),
            )
        })
        .map(|_| ())
    }

    /// FlushViewOfFile of the whole view: the modified pages of a file-backed view are
    /// written to the file (not its metadata). Does nothing for pagefile-backed views.
    pub fn flush(&self) -> Result<()> {
        self.span(0, 0)?;
        let base = self.base;
        self.owned(|s| s.flush_view(base, 0))
    }

    /// FlushViewOfFile of the pages touched by `[offset, offset+len)`.
    pub fn flush_range(&self, offset: usize, len: usize) -> Result<()> {
        let at = self.span(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        self.owned(|s| s.flush_view(at, len))
    }

    /// VirtualQuery of the page at `offset`.
    pub fn query(&self, offset: usize) -> Result<MemoryInfo> {
        let at = self.span(offset, 1)?;
        native().query(at)
    }

    /// Unmaps the view now (UnmapViewOfFile), reporting errors that `drop` would hide.
    pub fn unmap(mut self) -> Result<()> {
        self.unmap_now()
    }

    fn unmap_now(&mut self) -> Result<()> {
        let base = std::mem::replace(&mut self.base, 0);
        if base == 0 {
            return Ok(());
        }
        match as_owner(self.id, || native().unmap_view(base, false)) {
            // Unmapped behind our back (through the Win32 face): nothing of ours is left.
            Err(_) if native().allocation_id(base) != Some(self.id) => Ok(()),
            r => r,
        }
    }

    /// Runs an engine operation that may only touch this view's own allocation.
    fn owned<R>(
        &self,
        f: impl FnOnce(&'static crate::engine::Space<crate::os::linux::LinuxOs>) -> Result<R>,
    ) -> Result<R> {
        as_owner(self.id, || f(native())).map_err(|e| {
            if self.is_live() {
                e
            } else {
                Error::InvalidAddress("the view was unmapped")
            }
        })
    }
}

impl Drop for View {
    fn drop(&mut self) {
        // Only our own view: a range unmapped behind our back and reused is left alone.
        let _ = self.unmap_now();
    }
}

/// A read-write view that nobody else can reach: it creates an unnamed pagefile-backed
/// section for itself, maps it once and keeps the section's only handle to itself. Its bytes
/// change only through it, so — unlike [`View`] — it lends `&[u8]` from `&self` and
/// `&mut [u8]` from `&mut self`, as [`Reservation`](crate::Reservation) does.
/// [`UniqueView::into_shared`] hands the section out, and the view becomes a [`View`].
///
/// ```
/// use virtmem::{UniqueView, ViewAccess};
/// let mut u = UniqueView::new(4096)?;
/// u.as_mut_slice(0, 5)?.copy_from_slice(b"hello");
/// assert_eq!(u.as_slice(0, 5)?, b"hello");
/// let (section, view) = u.into_shared(); // from now on, others may map it
/// let other = section.map(0, 0, ViewAccess::Read)?;
/// let mut buf = [0; 5];
/// other.read(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// # drop(view);
/// # Ok::<(), virtmem::Error>(())
/// ```
#[derive(Debug)]
pub struct UniqueView {
    view: View,
    section: Section,
}

impl UniqueView {
    /// A view of `size` bytes (rounded up to pages) of a new section, committed and zeroed.
    pub fn new(size: usize) -> Result<UniqueView> {
        Self::make(SectionOptions::new(size as u64))
    }

    /// A view of `size` bytes of a new SEC_RESERVE section: nothing is committed until
    /// [`UniqueView::commit`].
    ///
    /// ```
    /// let mut u = virtmem::UniqueView::reserved(1 << 30)?; // 1 GiB of address space
    /// assert!(u.as_slice(0, 1).is_err());
    /// u.commit(0, 4096)?;
    /// u.as_mut_slice(0, 4096)?[4095] = 1;
    /// # Ok::<(), virtmem::Error>(())
    /// ```
    pub fn reserved(size: usize) -> Result<UniqueView> {
        Self::make(SectionOptions::new(size as u64).reserve(true))
    }

    fn make(options: SectionOptions) -> Result<UniqueView> {
        let section = options.create()?;
        let view = section.map(0, 0, ViewAccess::ReadWrite)?;
        Ok(UniqueView { view, section })
    }

    /// The base address.
    pub fn as_ptr(&self) -> *mut u8 {
        self.view.as_ptr()
    }

    /// The size in bytes (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// Always false: a view has at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bytes of `[offset, offset+len)`, which must all be committed.
    pub fn as_slice(&self, offset: usize, len: usize) -> Result<&[u8]> {
        let at = self.view.check(offset, len, readable, true)?;
        // SAFETY: committed readable pages of the only view of a section nobody else holds a
        // handle to; they stay so, and unchanged, while `self` is borrowed (changing them
        // needs `&mut self`).
        Ok(unsafe { std::slice::from_raw_parts(at as *const u8, len) })
    }

    /// The bytes of `[offset, offset+len)`, which must all be committed and writable.
    pub fn as_mut_slice(&mut self, offset: usize, len: usize) -> Result<&mut [u8]> {
        let at = self.view.check(offset, len, writable, true)?;
        // SAFETY: committed writable pages of the only view of a section nobody else holds a
        // handle to; `&mut self` excludes every other loan for the slice's lifetime.
        Ok(unsafe { std::slice::from_raw_parts_mut(at as *mut u8, len) })
    }

    /// Commits the pages touched by `[offset, offset+len)` (read-write, zero-filled; pages
    /// already committed keep their contents).
    pub fn commit(&mut self, offset: usize, len: usize) -> Result<()> {
        self.view.commit(offset, len)
    }

    /// VirtualQuery of the page at `offset`.
    pub fn query(&self, offset: usize) -> Result<MemoryInfo> {
        self.view.query(offset)
    }

    /// Gives up uniqueness: returns the section (to map more views, or to hand its handle
    /// on) and this view as an ordinary [`View`].
    pub fn into_shared(self) -> (Section, View) {
        (self.section, self.view)
    }
}

/// A growable shared buffer: a view of a SEC_RESERVE pagefile section whose committed prefix
/// grows with [`GrowableView::commit`]. Address space for the whole capacity is reserved at
/// once, so the buffer never moves; memory is committed (and charged) only as it grows.
/// Reading or writing beyond the committed part fails with [`Error::NoAccess`]. The commit
/// belongs to the section, so every view of it — other `GrowableView`s of the same section,
/// in this process or, for a named one, in others — sees the buffer grow.
///
/// ```
/// use virtmem::{Error, GrowableView, ViewAccess};
/// let g = GrowableView::new(1 << 30)?; // 1 GiB reserved, nothing committed
/// assert_eq!(g.committed_len(), 0);
/// g.commit(10_000)?;
/// assert_eq!(g.committed_len(), 12288); // whole pages
/// g.write(9_999, &[7])?;
/// assert!(matches!(g.write(12288, &[7]), Err(Error::NoAccess(_))));
/// let reader = GrowableView::from_section(g.section(), ViewAccess::Read)?;
/// assert_eq!(reader.committed_len(), 12288);
/// # Ok::<(), virtmem::Error>(())
/// ```
#[derive(Debug)]
pub struct GrowableView {
    view: View,
    section: Section,
}

impl GrowableView {
    /// A read-write view of a new unnamed SEC_RESERVE section of `capacity` bytes.
    pub fn new(capacity: usize) -> Result<GrowableView> {
        let section = SectionOptions::new(capacity as u64)
            .reserve(true)
            .create()?;
        Self::from_section(&section, ViewAccess::ReadWrite)
    }

    /// A read-write view of the SEC_RESERVE section called `name`, created with `capacity`
    /// bytes unless it exists (then it keeps its own size). Returns whether it existed.
    ///
    /// ```
    /// # fn main() -> virtmem::Result<()> {
    /// # let r = (|| -> virtmem::Result<()> {
    /// use virtmem::GrowableView;
    /// let name = format!("Local\\virtmem-doc-growable-{}", std::process::id());
    /// let (writer, existed) = GrowableView::named(&name, 1 << 20)?;
    /// assert!(!existed);
    /// writer.commit(4096)?;
    /// writer.write(0, b"first record")?;
    /// let (reader, existed) = GrowableView::named(&name, 1 << 20)?; // e.g. another process
    /// assert!(existed);
    /// assert_eq!(reader.committed_len(), 4096);
    /// # Ok(()) })();
    /// # match r { Err(virtmem::Error::NotSupported(_)) => Ok(()), r => r } }
    /// ```
    pub fn named(name: &str, capacity: usize) -> Result<(GrowableView, bool)> {
        let (section, existed) = SectionOptions::new(capacity as u64)
            .reserve(true)
            .create_named(name)?;
        Ok((
            Self::from_section(&section, ViewAccess::ReadWrite)?,
            existed,
        ))
    }

    /// A view of all of `section` with `access` (a second handle to it is kept). A section
    /// that is not SEC_RESERVE is entirely committed already.
    pub fn from_section(section: &Section, access: ViewAccess) -> Result<GrowableView> {
        let view = section.map(0, 0, access)?;
        Ok(GrowableView {
            view,
            section: section.try_clone()?,
        })
    }

    /// The section (to map more views, or to share its handle).
    pub fn section(&self) -> &Section {
        &self.section
    }

    /// The view.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The reserved size in bytes: how far the buffer can grow.
    pub fn capacity(&self) -> usize {
        self.view.len()
    }

    /// The length of the committed prefix in bytes (whole pages), as the section says now:
    /// commits made through other views count too.
    pub fn committed_len(&self) -> usize {
        self.view.refresh();
        let mut at = 0;
        while at < self.view.len() {
            match self.view.query(at) {
                Ok(i) if i.state == State::Commit => {
                    at = i.base_address + i.region_size - self.view.base
                }
                _ => break,
            }
        }
        at.min(self.view.len())
    }

    /// Grows the committed prefix to at least `len` bytes (rounded up to pages; never
    /// shrinks). New pages read as zero.
    pub fn commit(&self, len: usize) -> Result<()> {
        let have = self.committed_len();
        if len <= have {
            return Ok(());
        }
        self.view.commit(have, len - have)
    }

    /// [`View::read`] on the committed part.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.view.read(offset, buf)
    }

    /// [`View::write`] on the committed part.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.view.write(offset, data)
    }

    /// [`View::atomic_bytes`] of the committed part.
    pub fn atomic_bytes(&self, offset: usize, len: usize) -> Result<&[AtomicU8]> {
        self.view.atomic_bytes(offset, len)
    }
}

/// The least a [`GrowableFile`] grows its mapping by.
const GROW_MIN: usize = 64 * 1024;

/// A file mapped at a fixed address that grows as you append to it.
///
/// Windows has no growable file view: a view of a file cannot commit beyond its section,
/// and a section does not grow. `GrowableFile` reserves `max_len` bytes of address space as
/// a placeholder; to grow, it creates a larger section of the file (which extends the file)
/// and maps only the new part of it into the next piece of the placeholder
/// (MapViewOfFile3 with MEM_REPLACE_PLACEHOLDER). The file stays one contiguous range of
/// memory, nothing mapped earlier moves, and since the mapping at least doubles each time,
/// `n` bytes take O(log n) views.
///
/// While it is open the file is longer than its contents: its length is the mapped
/// capacity (whole pages, zero-filled past [`GrowableFile::len`]). Dropping it (or
/// [`GrowableFile::close`]) truncates the file back to `len()` — unless another section of
/// the file is open (a file with a section cannot shrink, `sections.md` FB3), or the process
/// dies first: then the zero padding stays.
///
/// Its bytes are shared with the file (and everyone who maps or writes it), so it lends no
/// `&[u8]`: see [`View`].
///
/// ```
/// # fn main() -> virtmem::Result<()> {
/// # let r = (|| -> virtmem::Result<()> {
/// use virtmem::GrowableFile;
/// let path = std::env::temp_dir().join(format!("virtmem-doc-log-{}", std::process::id()));
/// let file = std::fs::File::options().read(true).write(true).create(true).truncate(true)
///     .open(&path).unwrap();
/// let mut log = GrowableFile::open(&file, 1 << 30)?;
/// let at = log.append(b"first\n")?;
/// log.append(b"second\n")?;
/// let mut buf = [0; 5];
/// log.read(at, &mut buf)?;
/// assert_eq!(&buf, b"first");
/// log.close()?;
/// assert_eq!(std::fs::read(&path).unwrap(), b"first\nsecond\n");
/// # Ok(()) })();
/// # let _ = std::fs::remove_file(std::env::temp_dir().join(format!("virtmem-doc-log-{}", std::process::id())));
/// # match r { Err(virtmem::Error::NotSupported(_)) => Ok(()), r => r } }
/// ```
#[derive(Debug)]
pub struct GrowableFile {
    /// The views, in address order, one after another from the base.
    parts: Vec<View>,
    /// The placeholder after the mapped part (none once everything is mapped).
    tail: Option<Reservation>,
    /// The engine's handle to the file (for each new section).
    handle: Option<FileHandle>,
    /// Our own descriptor of the file, to truncate it at the end.
    file: Option<std::fs::File>,
    base: usize,
    /// Bytes mapped (whole pages); the file's length while open.
    mapped: usize,
    /// Bytes mapped plus bytes still reserved.
    max: usize,
    /// The contents' length.
    len: usize,
}

impl std::fmt::Debug for FileHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileHandle")
            .field("handle", &self.handle)
            .finish()
    }
}

impl GrowableFile {
    /// Maps `file` (open for reading and writing), whose contents may grow to `max_len`
    /// bytes. Its current contents are mapped at once; the file is extended to whole pages
    /// while it is open.
    pub fn open(file: &std::fs::File, max_len: usize) -> Result<GrowableFile> {
        let len = file
            .metadata()
            .map_err(|e| io_error(&e, "reading the file's size"))?
            .len();
        let len =
            usize::try_from(len).map_err(|_| Error::InvalidParameter("the file is too large"))?;
        if max_len == 0 || len > max_len {
            return Err(Error::InvalidParameter(
                "max_len must be at least the file's size and not 0",
            ));
        }
        let tail = Reservation::placeholder(max_len)?;
        let own = file
            .try_clone()
            .map_err(|e| io_error(&e, "duplicating the file's descriptor"))?;
        let mut g = GrowableFile {
            parts: Vec::new(),
            base: tail.base,
            max: tail.len(),
            tail: Some(tail),
            handle: Some(FileHandle::new(file)?),
            file: Some(own),
            mapped: 0,
            len,
        };
        g.map_up_to(len)?;
        Ok(g)
    }

    /// The contents' length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the contents are empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes mapped now (whole pages): the contents can grow this far without a new view.
    pub fn capacity(&self) -> usize {
        self.mapped
    }

    /// The most the contents can grow to (the reserved address range, whole pages).
    pub fn max_len(&self) -> usize {
        self.max
    }

    /// How many views map the file now.
    pub fn views(&self) -> usize {
        self.parts.len()
    }

    /// The base address (unsafe to use: see [`View::as_slice`]).
    pub fn as_ptr(&self) -> *mut u8 {
        self.base as *mut u8
    }

    /// Maps at least `need` bytes of the file (extending it).
    fn map_up_to(&mut self, need: usize) -> Result<()> {
        if need <= self.mapped {
            return Ok(());
        }
        if need > self.max {
            return Err(Error::NotEnoughMemory(
                "the file would outgrow the address range reserved for it",
            ));
        }
        let p = native().layout().page_size;
        let want = need
            .max(self.mapped.saturating_mul(2))
            .max(GROW_MIN)
            .next_multiple_of(p)
            .min(self.max);
        let chunk = want - self.mapped;
        let fh = self.handle.as_ref().ok_or(Error::InvalidHandle)?.handle;
        // A section of `want` bytes extends the file to that length.
        let (section, _) =
            Section::create(SectionSource::File(fh), PAGE_READWRITE, want as u64, None)?;
        let mut piece = self
            .tail
            .take()
            .ok_or(Error::NotEnoughMemory("no address range left"))?;
        let rest = if piece.len() > chunk {
            match piece.split_placeholder(chunk) {
                Ok(r) => Some(r),
                Err(e) => {
                    self.tail = Some(piece);
                    return Err(e);
                }
            }
        } else {
            None
        };
        let mapped = as_owner(piece.id, || {
            native().map_view(MapRequest {
                handle: section.handle,
                protect: PAGE_READWRITE,
                offset: self.mapped as u64,
                size: chunk,
                base: Some(piece.base),
                replace_placeholder: true,
                highest_end: None,
            })
        })
        .and_then(|base| View::adopt(base, PAGE_READWRITE));
        match mapped {
            Ok(view) => {
                // The placeholder is the view now: `piece` owns nothing any more.
                std::mem::forget(piece);
                self.parts.push(view);
                self.mapped = want;
                self.tail = rest;
                Ok(())
            }
            Err(e) => {
                self.tail = Some(match rest {
                    Some(rest) => Self::rejoin(piece, rest),
                    None => piece,
                });
                Err(e)
            }
        }
    }

    /// Coalesces two adjacent placeholders back into one (keeping the first if that fails).
    fn rejoin(first: Reservation, second: Reservation) -> Reservation {
        let (base, size) = (first.base, first.len() + second.len());
        let joined = native()
            .virtual_free(base, size, MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS)
            .and_then(|()| Reservation::adopt(base));
        match joined {
            Ok(r) => {
                // Both are part of `r` now.
                std::mem::forget(first);
                std::mem::forget(second);
                r
            }
            Err(_) => first,
        }
    }

    /// The views covering `[offset, offset+len)`, each with the part of the range in it
    /// (offsets relative to that view).
    fn pieces(&self, offset: usize, len: usize) -> Result<Vec<(&View, usize, usize, usize)>> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => {}
            _ => return Err(Error::NoAccess("the range runs past the file's contents")),
        }
        let mut out = Vec::new();
        let mut start = 0;
        for v in &self.parts {
            let (s, e) = (offset.max(start), (offset + len).min(start + v.len()));
            if s < e {
                out.push((v, s - start, e - s, s - offset));
            }
            start += v.len();
        }
        Ok(out)
    }

    /// Copies `buf.len()` bytes of the contents from `offset` into `buf` (see
    /// [`View::read`]); reading past [`GrowableFile::len`] fails with [`Error::NoAccess`].
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        for (v, at, n, from) in self.pieces(offset, buf.len())? {
            v.read(at, &mut buf[from..from + n])?;
        }
        Ok(())
    }

    /// Copies `data` over the contents at `offset` (see [`View::write`]); the range must lie
    /// within [`GrowableFile::len`] (to add bytes, [`GrowableFile::append`] or
    /// [`GrowableFile::set_len`]).
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<()> {
        for (v, at, n, from) in self.pieces(offset, data.len())? {
            v.write(at, &data[from..from + n])?;
        }
        Ok(())
    }

    /// The contents' bytes `[offset, offset+len)` as atomics (see [`View::atomic_bytes`]).
    pub fn atomic_bytes(&self, offset: usize, len: usize) -> Result<&[AtomicU8]> {
        for (v, at, n, _) in self.pieces(offset, len)? {
            v.atomic_bytes(at, n)?;
        }
        // SAFETY: the views lie one after another from the base, and every byte of the range
        // was just checked to be a committed writable page of one of them; they stay mapped
        // while `self` is borrowed (which the slice does).
        Ok(unsafe { std::slice::from_raw_parts((self.base + offset) as *const AtomicU8, len) })
    }

    /// Appends `data`, growing the file (and its mapping) as needed; returns the offset it
    /// was written at.
    pub fn append(&mut self, data: &[u8]) -> Result<usize> {
        let at = self.len;
        self.set_len(
            at.checked_add(data.len())
                .ok_or(Error::InvalidParameter("too long"))?,
        )?;
        self.write(at, data)?;
        Ok(at)
    }

    /// Sets the contents' length: growing adds zeros; shrinking zeroes the bytes cut off
    /// (the file is truncated when closed).
    pub fn set_len(&mut self, new_len: usize) -> Result<()> {
        if new_len > self.len {
            self.map_up_to(new_len)?;
        } else if new_len < self.len {
            let cut = self.len - new_len;
            let zeros = vec![0u8; cut.min(1 << 20)];
            let mut at = new_len;
            while at < self.len {
                let n = (self.len - at).min(zeros.len());
                self.write(at, &zeros[..n])?;
                at += n;
            }
        }
        self.len = new_len;
        Ok(())
    }

    /// FlushViewOfFile on every view: the modified pages are written to the file before this
    /// returns (the file's metadata is not; closing truncates and leaves that to the system).
    pub fn flush(&self) -> Result<()> {
        self.parts.iter().try_for_each(View::flush)
    }

    /// Unmaps the file and truncates it to [`GrowableFile::len`], reporting errors that
    /// `drop` would hide ([`Error::UserMappedFile`] when another section of the file keeps
    /// it from shrinking).
    pub fn close(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        let mut r = Ok(());
        for v in self.parts.drain(..) {
            if let Err(e) = v.unmap() {
                r = r.and(Err(e));
            }
        }
        self.tail = None;
        self.handle = None;
        if let Some(file) = self.file.take() {
            if r.is_ok() {
                r = truncate(&file, self.len as u64);
            }
        }
        r
    }
}

impl Drop for GrowableFile {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Truncates `file` to `len` unless another open file description holds a lock on it (a
/// section of the file holds a read lock for its whole life, in any process): shrinking it
/// would take pages away from that section's views.
fn truncate(file: &std::fs::File, len: u64) -> Result<()> {
    use std::os::fd::AsRawFd;
    let size = file
        .metadata()
        .map_err(|e| io_error(&e, "reading the file's size"))?
        .len();
    if size <= len {
        return Ok(());
    }
    // SAFETY: `flock` is a C struct of integers, for which all zeros is a valid value (and
    // `l_pid` must be 0 for the OFD commands).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    // SAFETY: the descriptor is open while `file` is borrowed, and `fl` is a valid
    // `struct flock` the kernel reads and writes for F_OFD_GETLK.
    let r = unsafe {
        libc::fcntl(
            file.as_raw_fd(),
            libc::F_OFD_GETLK,
            &mut fl as *mut libc::flock,
        )
    };
    if r == 0 && i32::from(fl.l_type) != libc::F_UNLCK {
        return Err(Error::UserMappedFile(
            "another section of the file is open: it keeps its padding",
        ));
    }
    file.set_len(len)
        .map_err(|e| io_error(&e, "truncating the file"))
}
