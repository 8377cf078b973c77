//! Files for file-backed sections: the small file API of `sections.md` §17 on Linux paths.
//!
//! A [`HostFile`] is what a file handle refers to (one `CreateFile` call makes one; handles
//! duplicated from it share it, and so share its file pointer, as on Windows). It keeps:
//!
//! * the descriptor, opened `O_CLOEXEC` with the least mode the handle's access needs;
//! * the handle's access mask with the generic rights mapped to the file's specific ones
//!   (`GENERIC_READ` → `FILE_GENERIC_READ`, ...), and its share mode;
//! * its own file pointer: reads and writes use `pread` / `pwrite` at it, so two `CreateFile`
//!   handles of one file have independent pointers, and the descriptor's offset is never used.
//!   A lock serializes the I/O of one `HostFile`, as Windows serializes synchronous I/O on one
//!   file object;
//! * its (device, inode), and the path it was opened by (for FILE_FLAG_DELETE_ON_CLOSE).
//!
//! ## Share modes
//!
//! Windows' rule, enforced between the `HostFile`s of this process (not across processes): a
//! process-wide table maps each (device, inode) to its opens. An open that asks for read
//! (`FILE_READ_DATA` / `FILE_EXECUTE`), write (`FILE_WRITE_DATA` / `FILE_APPEND_DATA`) or
//! `DELETE` access fails with ERROR_SHARING_VIOLATION (32) when an existing open of the file
//! does not share that access, or when it does not itself share an access an existing open
//! has. Opens asking for none of those (attributes only) are never checked and never conflict.
//! An open leaves the table when its `HostFile` is dropped, i.e. when its last handle closes:
//! a section keeps its own descriptor, not the `HostFile`, so sections impose no share-mode
//! restriction (FB4).
//!
//! ## FILE_FLAG_DELETE_ON_CLOSE
//!
//! Such an open also asks for `DELETE` (as on Windows, so later opens must share delete).
//! When its `HostFile` is dropped the file becomes *delete pending*: new opens fail with
//! ERROR_ACCESS_DENIED, and when the last open of the file in this process is dropped the
//! path is unlinked (if it still names the same file). Views keep their data: the inode lives
//! while a section's descriptor or mapping does.
//!
//! ## Sections and shrinking (FB3)
//!
//! [`HostFile::reopen_for_section`] opens the file anew (a new open file description) and
//! takes an OFD read lock (`F_OFD_SETLK`, `F_RDLCK`) over the whole file on it; the section
//! keeps that descriptor for its whole life. [`HostFile::set_end`] asks `F_OFD_GETLK` whether
//! a write lock over the whole file could be taken from the handle's own descriptor: any
//! conflicting lock (held through another open file description, in any process) means a
//! section of the file exists, and shrinking fails with ERROR_USER_MAPPED_FILE (1224).
//! Growing is always allowed.
//!
//! ## errno → Win32 error
//!
//! | errno | Win32 error |
//! |---|---|
//! | `ENOENT` | ERROR_FILE_NOT_FOUND (2); ERROR_PATH_NOT_FOUND (3) when the parent directory is missing |
//! | `ENOTDIR` | ERROR_PATH_NOT_FOUND (3) |
//! | `EACCES`, `EPERM`, `EISDIR` | ERROR_ACCESS_DENIED (5) |
//! | `EROFS` | ERROR_WRITE_PROTECT (19) |
//! | `ETXTBSY` | ERROR_SHARING_VIOLATION (32) |
//! | `EAGAIN` (a lock held by someone else) | ERROR_LOCK_VIOLATION (33) |
//! | `EEXIST` | ERROR_FILE_EXISTS (80) |
//! | `EINVAL` | ERROR_INVALID_PARAMETER (87) |
//! | `ENOSPC`, `EFBIG`, `EDQUOT` | ERROR_DISK_FULL (112) |
//! | `ENOMEM` | ERROR_NOT_ENOUGH_MEMORY (8) |
//! | `EMFILE`, `ENFILE` | ERROR_TOO_MANY_OPEN_FILES (4) |
//! | `EBUSY` | ERROR_BUSY (170) |
//! | `ENAMETOOLONG` | ERROR_FILENAME_EXCED_RANGE (206) |
//! | `EIO` | ERROR_IO_DEVICE (1117) |
//! | `ELOOP` | ERROR_CANT_RESOLVE_FILENAME (1921) |
//! | any other | ERROR_GEN_FAILURE (31) |
//!
//! This module is in the OS layer, below `crate::error`: it reports a [`FileError`] (a Win32
//! code and what failed), which converts into `crate::error::Error` with `?`.

use crate::os::retry::bounded;
use crate::vocab::consts::*;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{self, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A failure of the file API: the Win32 error code `GetLastError()` reports, and what failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileError {
    /// The Win32 error code (ERROR_FILE_NOT_FOUND, ERROR_SHARING_VIOLATION, ...).
    pub code: u32,
    /// What failed, for messages.
    pub what: &'static str,
}

/// Result of the file API.
pub(crate) type FileResult<T> = Result<T, FileError>;

/// A failure with `code`.
fn fail<T>(code: u32, what: &'static str) -> FileResult<T> {
    Err(FileError { code, what })
}

/// The Win32 error for an errno (the table in the module documentation).
fn errno_code(e: Errno) -> u32 {
    match e {
        Errno::NOENT => ERROR_FILE_NOT_FOUND,
        Errno::NOTDIR => ERROR_PATH_NOT_FOUND,
        Errno::ACCESS | Errno::PERM | Errno::ISDIR => ERROR_ACCESS_DENIED,
        Errno::ROFS => ERROR_WRITE_PROTECT,
        Errno::TXTBSY => ERROR_SHARING_VIOLATION,
        Errno::AGAIN => ERROR_LOCK_VIOLATION,
        Errno::EXIST => ERROR_FILE_EXISTS,
        Errno::INVAL => ERROR_INVALID_PARAMETER,
        Errno::NOSPC | Errno::FBIG | Errno::DQUOT => ERROR_DISK_FULL,
        Errno::NOMEM => ERROR_NOT_ENOUGH_MEMORY,
        Errno::MFILE | Errno::NFILE => ERROR_TOO_MANY_OPEN_FILES,
        Errno::BUSY => ERROR_BUSY,
        Errno::NAMETOOLONG => ERROR_FILENAME_EXCED_RANGE,
        Errno::IO => ERROR_IO_DEVICE,
        Errno::LOOP => ERROR_CANT_RESOLVE_FILENAME,
        _ => ERROR_GEN_FAILURE,
    }
}

/// The error for a failed call on an open file.
fn from_errno(e: Errno, what: &'static str) -> FileError {
    FileError {
        code: errno_code(e),
        what,
    }
}

/// The error for a failed call on `path`: a missing file whose directory is missing too is
/// ERROR_PATH_NOT_FOUND.
fn from_errno_at(e: Errno, path: &Path, what: &'static str) -> FileError {
    if e == Errno::NOENT && parent_missing(path) {
        return FileError {
            code: ERROR_PATH_NOT_FOUND,
            what,
        };
    }
    from_errno(e, what)
}

/// Whether the directory `path` would be in does not exist (or is not a directory).
fn parent_missing(path: &Path) -> bool {
    match path.parent() {
        None => false,
        Some(p) if p.as_os_str().is_empty() => false,
        Some(p) => match fs::stat(p) {
            Ok(st) => FileType::from_raw_mode(st.st_mode) != FileType::Directory,
            Err(e) => matches!(e, Errno::NOENT | Errno::NOTDIR),
        },
    }
}

/// The errno of the last failed libc call.
fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// `path` with every `\` turned into `/` (Windows code writes either; a UTF-8 multi-byte
/// sequence never contains the byte `\`).
fn host_path(path: &Path) -> PathBuf {
    let bytes = path
        .as_os_str()
        .as_bytes()
        .iter()
        .map(|&b| if b == b'\\' { b'/' } else { b })
        .collect();
    PathBuf::from(OsString::from_vec(bytes))
}

/// The rights that count as reading for share modes.
const READ_CLASS: u32 = FILE_READ_DATA | FILE_EXECUTE;
/// The rights that count as writing for share modes.
const WRITE_CLASS: u32 = FILE_WRITE_DATA | FILE_APPEND_DATA;
/// The generic rights.
const GENERIC_BITS: u32 = GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL;

/// `access` with its generic rights replaced by the file rights they stand for.
pub(crate) fn map_generic(access: u32) -> u32 {
    let mut a = access & !GENERIC_BITS;
    for (generic, specific) in [
        (GENERIC_READ, FILE_GENERIC_READ),
        (GENERIC_WRITE, FILE_GENERIC_WRITE),
        (GENERIC_EXECUTE, FILE_GENERIC_EXECUTE),
        (GENERIC_ALL, FILE_ALL_ACCESS),
    ] {
        if access & generic != 0 {
            a |= specific;
        }
    }
    a
}

/// Whether an open with (mapped) `access` takes part in share-mode checks.
fn shares_anything(access: u32) -> bool {
    access & (READ_CLASS | WRITE_CLASS | DELETE) != 0
}

/// Whether `access` asks for something `share` (another open's share mode) does not allow.
fn not_shared(access: u32, share: u32) -> bool {
    (access & READ_CLASS != 0 && share & FILE_SHARE_READ == 0)
        || (access & WRITE_CLASS != 0 && share & FILE_SHARE_WRITE == 0)
        || (access & DELETE != 0 && share & FILE_SHARE_DELETE == 0)
}

/// One open of a file, in the share table.
#[derive(Debug)]
struct Open {
    /// The [`HostFile::id`] of the open.
    id: u64,
    /// Its (mapped) access.
    access: u32,
    /// Its share mode.
    share: u32,
}

/// The opens of one file (device, inode) in this process.
#[derive(Debug, Default)]
struct Inode {
    /// Every open `HostFile` of the file.
    opens: Vec<Open>,
    /// Set when a FILE_FLAG_DELETE_ON_CLOSE open was closed: the path to unlink when the last
    /// open goes.
    delete_pending: Option<PathBuf>,
}

/// The share table: (device, inode) → the opens of that file.
static OPEN_FILES: Mutex<BTreeMap<(u64, u64), Inode>> = Mutex::new(BTreeMap::new());

/// Numbers the opens.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The share table, locked (a panic while it was held left it consistent: every change is one
/// statement).
fn open_files() -> MutexGuard<'static, BTreeMap<(u64, u64), Inode>> {
    OPEN_FILES.lock().unwrap_or_else(|e| e.into_inner())
}

/// The share table held by `fork`'s prepare handler (so a child never inherits it locked).
pub(crate) struct ShareTableGuard(#[allow(dead_code)] MutexGuard<'static, BTreeMap<(u64, u64), Inode>>);

/// Fork: holds the share table's lock until the guard is dropped (a leaf lock: its holders
/// take no other lock).
pub(crate) fn fork_lock() -> ShareTableGuard {
    ShareTableGuard(open_files())
}

/// `fcntl` with a `struct flock` over the whole file: `cmd` is `F_OFD_GETLK` or
/// `F_OFD_SETLK`, `kind` `F_RDLCK` or `F_WRLCK`. Returns the lock type the kernel wrote back.
fn ofd_lock(fd: BorrowedFd<'_>, cmd: libc::c_int, kind: libc::c_int) -> Result<libc::c_int, Errno> {
    // SAFETY: `flock` is a plain C struct of integers; all-zero is valid (and l_pid must be 0
    // for the OFD commands).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl.l_start = 0;
    fl.l_len = 0;
    // SAFETY: `fd` is an open descriptor for the duration of the call, and `fl` is a valid,
    // exclusively borrowed `struct flock` that the kernel reads and (for GETLK) writes.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut fl as *mut libc::flock) };
    if r == -1 {
        Err(last_errno())
    } else {
        Ok(libc::c_int::from(fl.l_type))
    }
}

/// An open file (what a file handle refers to).
#[derive(Debug)]
pub(crate) struct HostFile {
    /// The descriptor (its own offset is never used).
    fd: OwnedFd,
    /// This open's number in the share table.
    id: u64,
    /// The access mask, generic rights mapped (plus DELETE for delete-on-close).
    access: u32,
    /// The file pointer; held during each read and write, which serializes them.
    pos: Mutex<u64>,
    /// FILE_FLAG_DELETE_ON_CLOSE.
    delete_on_close: bool,
    /// Device number.
    dev: u64,
    /// Inode number.
    ino: u64,
    /// The file's absolute path when it was opened (what delete-on-close unlinks).
    opened_as: PathBuf,
}

impl HostFile {
    /// Opens or creates `path` as `CreateFile` does (`sections.md` §17). `access` is the
    /// `dwDesiredAccess` mask (GENERIC_* and FILE_* rights), `share` the `FILE_SHARE_*` mode,
    /// `disposition` one of CREATE_NEW, CREATE_ALWAYS, OPEN_EXISTING, OPEN_ALWAYS,
    /// TRUNCATE_EXISTING; of `flags_and_attributes` only FILE_FLAG_DELETE_ON_CLOSE has an
    /// effect. Returns the file and whether it existed before the call.
    ///
    /// Errors: an unknown disposition or share bit, or TRUNCATE_EXISTING without write
    /// access → ERROR_INVALID_PARAMETER; CREATE_NEW of an existing file → ERROR_FILE_EXISTS;
    /// a missing file → ERROR_FILE_NOT_FOUND, a missing directory → ERROR_PATH_NOT_FOUND; a
    /// directory or a delete-pending file → ERROR_ACCESS_DENIED; a share-mode conflict →
    /// ERROR_SHARING_VIOLATION (nothing is created or truncated then); truncating (CREATE_ALWAYS,
    /// TRUNCATE_EXISTING) a file that has a section → ERROR_USER_MAPPED_FILE.
    pub(crate) fn open(
        path: &Path,
        access: u32,
        share: u32,
        disposition: u32,
        flags_and_attributes: u32,
    ) -> FileResult<(HostFile, bool)> {
        if !(CREATE_NEW..=TRUNCATE_EXISTING).contains(&disposition) {
            return fail(ERROR_INVALID_PARAMETER, "unknown creation disposition");
        }
        if share & !(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE) != 0 {
            return fail(ERROR_INVALID_PARAMETER, "unknown share mode bits");
        }
        let delete_on_close = flags_and_attributes & FILE_FLAG_DELETE_ON_CLOSE != 0;
        let mut granted = map_generic(access);
        if delete_on_close {
            granted |= DELETE;
        }
        if disposition == TRUNCATE_EXISTING && granted & FILE_WRITE_DATA == 0 {
            return fail(
                ERROR_INVALID_PARAMETER,
                "TRUNCATE_EXISTING needs GENERIC_WRITE",
            );
        }
        let host = host_path(path);
        if host.as_os_str().is_empty() {
            return fail(ERROR_PATH_NOT_FOUND, "empty path");
        }
        let reads = granted & READ_CLASS != 0;
        let writes = granted & WRITE_CLASS != 0;
        let mode = match (reads, writes) {
            (true, true) => OFlags::RDWR,
            (false, true) => OFlags::WRONLY,
            _ => OFlags::RDONLY,
        };
        let open = |extra: OFlags| -> Result<OwnedFd, Errno> {
            bounded(Errno::INTR, || {
                match fs::open(&host, mode | OFlags::CLOEXEC | extra, Mode::from(0o666)) {
                    Err(Errno::INTR) => None,
                    r => Some(r),
                }
            })
        };
        let at = |e: Errno| from_errno_at(e, &host, "CreateFile");
        let (fd, existed) = match disposition {
            CREATE_NEW => (open(OFlags::CREATE | OFlags::EXCL).map_err(at)?, false),
            OPEN_EXISTING | TRUNCATE_EXISTING => (open(OFlags::empty()).map_err(at)?, true),
            // CREATE_ALWAYS, OPEN_ALWAYS: open the existing file, else create it exclusively
            // (so "existed" is exact); a file appearing or vanishing in between is a lost
            // race, tried again.
            _ => bounded(
                FileError {
                    code: ERROR_GEN_FAILURE,
                    what: "the file kept appearing and vanishing",
                },
                || match open(OFlags::empty()) {
                    Ok(fd) => Some(Ok((fd, true))),
                    Err(Errno::NOENT) if !parent_missing(&host) => {
                        match open(OFlags::CREATE | OFlags::EXCL) {
                            Ok(fd) => Some(Ok((fd, false))),
                            Err(Errno::EXIST) => None,
                            Err(e) => Some(Err(at(e))),
                        }
                    }
                    Err(e) => Some(Err(at(e))),
                },
            )?,
        };
        let st = fs::fstat(&fd).map_err(|e| from_errno(e, "fstat"))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            return fail(ERROR_ACCESS_DENIED, "a directory");
        }
        let (dev, ino) = (st.st_dev, st.st_ino);
        let opened_as = fd_path(fd.as_fd()).unwrap_or_else(|_| absolute(&host));
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        {
            let mut table = open_files();
            let inode = table.entry((dev, ino)).or_default();
            let refusal = if inode.delete_pending.is_some() {
                Some(FileError {
                    code: ERROR_ACCESS_DENIED,
                    what: "the file is being deleted",
                })
            } else if shares_anything(granted)
                && inode.opens.iter().any(|o| {
                    shares_anything(o.access)
                        && (not_shared(granted, o.share) || not_shared(o.access, share))
                })
            {
                Some(FileError {
                    code: ERROR_SHARING_VIOLATION,
                    what: "another handle's share mode",
                })
            } else {
                None
            };
            if let Some(e) = refusal {
                if inode.opens.is_empty() && inode.delete_pending.is_none() {
                    table.remove(&(dev, ino));
                }
                return Err(e);
            }
            inode.opens.push(Open {
                id,
                access: granted,
                share,
            });
        }
        // From here on, dropping `file` takes the open out of the share table again. It is
        // delete-on-close only once the open has succeeded: a failed open deletes nothing.
        let mut file = HostFile {
            fd,
            id,
            access: granted,
            pos: Mutex::new(0),
            delete_on_close: false,
            dev,
            ino,
            opened_as,
        };
        let truncate = existed && matches!(disposition, CREATE_ALWAYS | TRUNCATE_EXISTING);
        if truncate && st.st_size > 0 {
            if file.has_section()? {
                return fail(ERROR_USER_MAPPED_FILE, "the file has a section");
            }
            let truncated = if writes {
                fs::ftruncate(&file.fd, 0)
            } else {
                // CREATE_ALWAYS with read-only access still truncates: through a writable
                // descriptor of the same file.
                fs::ftruncate(&file.reopen(OFlags::WRONLY)?, 0)
            };
            truncated.map_err(|e| from_errno(e, "truncating the file"))?;
        }
        file.delete_on_close = delete_on_close;
        Ok((file, existed))
    }

    /// The descriptor.
    pub(crate) fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The handle's access mask: the `dwDesiredAccess` given to `CreateFile` with the
    /// generic rights mapped (`GENERIC_READ` → `FILE_GENERIC_READ`, `GENERIC_WRITE` →
    /// `FILE_GENERIC_WRITE`, `GENERIC_EXECUTE` → `FILE_GENERIC_EXECUTE`, `GENERIC_ALL` →
    /// `FILE_ALL_ACCESS`), plus `DELETE` for FILE_FLAG_DELETE_ON_CLOSE.
    pub(crate) fn access(&self) -> u32 {
        self.access
    }

    /// Whether the handle may read the data (`FILE_READ_DATA`).
    pub(crate) fn can_read(&self) -> bool {
        self.access & FILE_READ_DATA != 0
    }

    /// Whether the handle may write the data (`FILE_WRITE_DATA` or `FILE_APPEND_DATA`).
    pub(crate) fn can_write(&self) -> bool {
        self.access & WRITE_CLASS != 0
    }

    /// Whether the handle may map the file for execution (`FILE_EXECUTE`).
    #[cfg(test)]
    pub(crate) fn can_execute(&self) -> bool {
        self.access & FILE_EXECUTE != 0
    }

    /// The file's (device, inode).
    pub(crate) fn identity(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// The file's current path (`readlink` of `/proc/self/fd/N`: follows renames; a deleted
    /// file's ends in " (deleted)").
    pub(crate) fn path(&self) -> FileResult<PathBuf> {
        fd_path(self.fd.as_fd())
    }

    /// The file pointer, locked.
    fn pointer(&self) -> MutexGuard<'_, u64> {
        self.pos.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads at the file pointer into `buf` and advances the pointer by what was read: all of
    /// `buf` unless the end of the file comes first (0 bytes at or past the end). Needs read
    /// access (ERROR_ACCESS_DENIED).
    pub(crate) fn read(&self, buf: &mut [u8]) -> FileResult<usize> {
        if !self.can_read() {
            return fail(ERROR_ACCESS_DENIED, "the handle has no read access");
        }
        let mut pos = self.pointer();
        let mut done = 0;
        while done < buf.len() {
            match rustix::io::pread(&self.fd, &mut buf[done..], *pos + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                Err(e) if done == 0 => return Err(from_errno(e, "pread")),
                Err(_) => break,
            }
        }
        *pos += done as u64;
        Ok(done)
    }

    /// Writes `buf` at the file pointer, extending the file (a gap before the pointer reads
    /// as zeros), and advances the pointer. With `FILE_APPEND_DATA` but not `FILE_WRITE_DATA`
    /// the data goes to the end of the file. An empty `buf` changes nothing. Needs write
    /// access (ERROR_ACCESS_DENIED). A failure after part of the data was written returns the
    /// part written; one before anything was written is the error (ENOSPC, EFBIG →
    /// ERROR_DISK_FULL).
    pub(crate) fn write(&self, buf: &[u8]) -> FileResult<usize> {
        if !self.can_write() {
            return fail(ERROR_ACCESS_DENIED, "the handle has no write access");
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let mut pos = self.pointer();
        if self.access & FILE_WRITE_DATA == 0 {
            *pos = self.size()?;
        }
        let mut done = 0;
        while done < buf.len() {
            match rustix::io::pwrite(&self.fd, &buf[done..], *pos + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                Err(e) if done == 0 => return Err(from_errno(e, "pwrite")),
                Err(_) => break,
            }
        }
        *pos += done as u64;
        Ok(done)
    }

    /// Moves the file pointer by `distance` from the start (FILE_BEGIN), the pointer
    /// (FILE_CURRENT) or the end (FILE_END); returns the new position. Past the end is
    /// allowed and does not change the size. A negative result → ERROR_NEGATIVE_SEEK, another
    /// method or a position beyond 2^63 - 1 → ERROR_INVALID_PARAMETER; the pointer stays.
    pub(crate) fn seek(&self, distance: i64, method: u32) -> FileResult<u64> {
        self.seek_limited(distance, method, i64::MAX as u64)
    }

    /// [`seek`](Self::seek), also failing with ERROR_INVALID_PARAMETER (the pointer staying)
    /// when the new position is beyond `max` (`SetFilePointer` without a high DWORD: a
    /// position must fit 32 bits).
    pub(crate) fn seek_limited(&self, distance: i64, method: u32, max: u64) -> FileResult<u64> {
        let mut pos = self.pointer();
        let base = match method {
            FILE_BEGIN => 0,
            FILE_CURRENT => *pos,
            FILE_END => self.size()?,
            _ => return fail(ERROR_INVALID_PARAMETER, "unknown move method"),
        };
        let new = i128::from(base) + i128::from(distance);
        if new < 0 {
            return fail(
                ERROR_NEGATIVE_SEEK,
                "a position before the start of the file",
            );
        }
        if new > i128::from(max.min(i64::MAX as u64)) {
            return fail(ERROR_INVALID_PARAMETER, "the position is too large");
        }
        *pos = new as u64;
        Ok(*pos)
    }

    /// Makes the file pointer the end of the file. Growing fills with zeros; shrinking a file
    /// that has a section (in any process) fails with ERROR_USER_MAPPED_FILE and the size
    /// stays. Needs write access (ERROR_ACCESS_DENIED).
    pub(crate) fn set_end(&self) -> FileResult<()> {
        if !self.can_write() {
            return fail(ERROR_ACCESS_DENIED, "the handle has no write access");
        }
        let pos = self.pointer();
        if *pos < self.size()? && self.has_section()? {
            return fail(ERROR_USER_MAPPED_FILE, "the file has a section");
        }
        fs::ftruncate(&self.fd, *pos).map_err(|e| from_errno(e, "ftruncate"))
    }

    /// The file's size in bytes.
    pub(crate) fn size(&self) -> FileResult<u64> {
        let st = fs::fstat(&self.fd).map_err(|e| from_errno(e, "fstat"))?;
        Ok(st.st_size.max(0) as u64)
    }

    /// Writes the file's data and metadata to the disk (`fsync`). Needs write access
    /// (ERROR_ACCESS_DENIED), as `FlushFileBuffers` does.
    pub(crate) fn flush(&self) -> FileResult<()> {
        if !self.can_write() {
            return fail(ERROR_ACCESS_DENIED, "the handle has no write access");
        }
        fs::fsync(&self.fd).map_err(|e| from_errno(e, "fsync"))
    }

    /// Whether some open file description holds a lock on the file that a whole-file write
    /// lock through this handle's would conflict with: a section's read lock, in any process.
    fn has_section(&self) -> FileResult<bool> {
        let held = ofd_lock(self.fd.as_fd(), libc::F_OFD_GETLK, libc::F_WRLCK)
            .map_err(|e| from_errno(e, "F_OFD_GETLK"))?;
        Ok(held != libc::F_UNLCK)
    }

    /// The same file opened anew through `/proc/self/fd` (a new open file description).
    fn reopen(&self, mode: OFlags) -> FileResult<OwnedFd> {
        let proc = format!("/proc/self/fd/{}", self.raw_fd());
        bounded(Errno::INTR, || {
            match fs::open(proc.as_str(), mode | OFlags::CLOEXEC, Mode::empty()) {
                Err(Errno::INTR) => None,
                r => Some(r),
            }
        })
        .map_err(|e| from_errno(e, "reopening the file"))
    }

    /// A descriptor of the file for a section to keep for its whole life: the same file
    /// opened anew (read-write when `writable`, else read-only), holding an OFD read lock over
    /// the whole file, which is how [`set_end`](Self::set_end) — in this process or another —
    /// knows that the file has a section (FB3). The handle needs read access, and write access
    /// for `writable` (ERROR_ACCESS_DENIED); a write lock held on the file by someone else →
    /// ERROR_LOCK_VIOLATION.
    pub(crate) fn reopen_for_section(&self, writable: bool) -> FileResult<OwnedFd> {
        if !self.can_read() {
            return fail(ERROR_ACCESS_DENIED, "the file handle has no read access");
        }
        if writable && !self.can_write() {
            return fail(ERROR_ACCESS_DENIED, "the file handle has no write access");
        }
        let fd = self.reopen(if writable {
            OFlags::RDWR
        } else {
            OFlags::RDONLY
        })?;
        match ofd_lock(fd.as_fd(), libc::F_OFD_SETLK, libc::F_RDLCK) {
            Ok(_) => Ok(fd),
            Err(Errno::AGAIN | Errno::ACCESS) => fail(
                ERROR_LOCK_VIOLATION,
                "the file is locked for writing by someone else",
            ),
            Err(e) => Err(from_errno(e, "F_OFD_SETLK")),
        }
    }
}

impl Drop for HostFile {
    /// Takes the open out of the share table; the last open of a delete-pending file unlinks
    /// it (if its path still names the same file).
    fn drop(&mut self) {
        let key = (self.dev, self.ino);
        let mut table = open_files();
        let Some(inode) = table.get_mut(&key) else {
            return;
        };
        inode.opens.retain(|o| o.id != self.id);
        if self.delete_on_close && inode.delete_pending.is_none() {
            inode.delete_pending = Some(self.opened_as.clone());
        }
        if inode.opens.is_empty() {
            if let Some(path) = table.remove(&key).and_then(|i| i.delete_pending) {
                if matches!(fs::stat(&path), Ok(st) if (st.st_dev, st.st_ino) == key) {
                    let _ = fs::unlink(&path);
                }
            }
        }
    }
}

/// The path `/proc/self/fd/N` links to.
fn fd_path(fd: BorrowedFd<'_>) -> FileResult<PathBuf> {
    let link = fs::readlink(format!("/proc/self/fd/{}", fd.as_raw_fd()), Vec::new())
        .map_err(|e| from_errno(e, "readlink /proc/self/fd"))?;
    Ok(PathBuf::from(OsString::from_vec(link.into_bytes())))
}

/// `path` made absolute against the current directory (when `/proc` cannot say).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Deletes the file `path` (`DeleteFile`). A missing file → ERROR_FILE_NOT_FOUND (its
/// directory missing → ERROR_PATH_NOT_FOUND); a directory, or a file already being deleted
/// (delete on close) → ERROR_ACCESS_DENIED; a file that a handle of this process has open
/// without FILE_SHARE_DELETE → ERROR_SHARING_VIOLATION. A symbolic link is deleted itself.
pub(crate) fn delete(path: &Path) -> FileResult<()> {
    let host = host_path(path);
    if host.as_os_str().is_empty() {
        return fail(ERROR_PATH_NOT_FOUND, "empty path");
    }
    let st = fs::lstat(&host).map_err(|e| from_errno_at(e, &host, "DeleteFile"))?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        return fail(ERROR_ACCESS_DENIED, "a directory");
    }
    // Held over the unlink, so no open of this process slips in between.
    let table = open_files();
    if let Some(inode) = table.get(&(st.st_dev, st.st_ino)) {
        if inode.delete_pending.is_some() {
            return fail(ERROR_ACCESS_DENIED, "the file is being deleted");
        }
        if inode
            .opens
            .iter()
            .any(|o| shares_anything(o.access) && o.share & FILE_SHARE_DELETE == 0)
        {
            return fail(ERROR_SHARING_VIOLATION, "a handle does not share delete");
        }
    }
    fs::unlink(&host).map_err(|e| from_errno_at(e, &host, "unlink"))
}

/// The temporary directory (`GetTempPath`): `$TMPDIR` if set and not empty, else `/tmp`,
/// with a trailing `/`.
pub(crate) fn temp_path() -> PathBuf {
    let mut dir = match std::env::var_os("TMPDIR") {
        Some(d) if !d.is_empty() => d.into_vec(),
        _ => b"/tmp".to_vec(),
    };
    if !dir.ends_with(b"/") {
        dir.push(b'/');
    }
    PathBuf::from(OsString::from_vec(dir))
}

/// A temporary file name (`GetTempFileName`): `dir` (a `/` added unless it ends in `/` or
/// `\`), the first three characters of `prefix`, the number in upper-case hex, `.TMP`. Only
/// the low 16 bits of `unique` count. Non-zero: only the name is built. Zero: a number not in
/// use is chosen (starting from the clock, counting up) and the file is created empty (and
/// closed) with `O_EXCL`; all 65535 in use → ERROR_FILE_EXISTS; a missing directory →
/// ERROR_PATH_NOT_FOUND. Returns the name and the number.
pub(crate) fn temp_file_name(dir: &Path, prefix: &str, unique: u32) -> FileResult<(PathBuf, u32)> {
    let mut base = dir.as_os_str().as_bytes().to_vec();
    if !base.is_empty() && !base.ends_with(b"/") && !base.ends_with(b"\\") {
        base.push(b'/');
    }
    base.extend(prefix.chars().take(3).collect::<String>().bytes());
    let name = |n: u32| {
        let mut v = base.clone();
        v.extend(format!("{n:X}.TMP").bytes());
        PathBuf::from(OsString::from_vec(v))
    };
    let unique = unique & 0xFFFF;
    if unique != 0 {
        return Ok((name(unique), unique));
    }
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ d.as_secs() as u32)
        .unwrap_or(0);
    let mut n = (clock ^ std::process::id().rotate_left(5)) % 0xFFFF + 1;
    for _ in 0..0xFFFF {
        let path = name(n);
        let host = host_path(&path);
        match fs::open(
            &host,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from(0o666),
        ) {
            Ok(_) => return Ok((path, n)),
            Err(Errno::EXIST | Errno::INTR) => n = n % 0xFFFF + 1,
            Err(e) => return Err(from_errno_at(e, &host, "GetTempFileName")),
        }
    }
    fail(ERROR_FILE_EXISTS, "every temporary file number is in use")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test, removed at the end.
    struct Dir(PathBuf);
    impl Dir {
        fn new(name: &str) -> Dir {
            let d = std::env::temp_dir()
                .join(format!("virtmem-files-unit-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const RW: u32 = GENERIC_READ | GENERIC_WRITE;
    const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

    #[test]
    fn a_section_lock_stops_shrinking_but_not_growing() {
        let d = Dir::new("section");
        let p = d.0.join("f");
        let (f, existed) = HostFile::open(&p, RW, SHARE_ALL, CREATE_NEW, 0).unwrap();
        assert!(!existed);
        assert_eq!(f.write(&[7u8; 8192]).unwrap(), 8192);
        let section = f.reopen_for_section(true).unwrap();
        f.seek(8191, FILE_BEGIN).unwrap();
        assert_eq!(f.set_end().unwrap_err().code, ERROR_USER_MAPPED_FILE);
        assert_eq!(f.size().unwrap(), 8192);
        // Another handle of the file sees the section too.
        let (g, existed) = HostFile::open(&p, RW, SHARE_ALL, OPEN_EXISTING, 0).unwrap();
        assert!(existed);
        assert_eq!(g.set_end().unwrap_err().code, ERROR_USER_MAPPED_FILE);
        // CREATE_ALWAYS would truncate: refused as well.
        let e = HostFile::open(&p, RW, SHARE_ALL, CREATE_ALWAYS, 0).unwrap_err();
        assert_eq!(e.code, ERROR_USER_MAPPED_FILE);
        assert_eq!(f.size().unwrap(), 8192);
        f.seek(12288, FILE_BEGIN).unwrap();
        f.set_end().unwrap();
        assert_eq!(f.size().unwrap(), 12288);
        drop(section);
        f.seek(100, FILE_BEGIN).unwrap();
        f.set_end().unwrap();
        assert_eq!(f.size().unwrap(), 100);
    }

    #[test]
    fn reopen_for_section_needs_the_handle_rights() {
        let d = Dir::new("rights");
        let p = d.0.join("f");
        let (f, _) = HostFile::open(&p, GENERIC_READ, SHARE_ALL, CREATE_NEW, 0).unwrap();
        assert!(f.can_read() && !f.can_write() && !f.can_execute());
        assert_eq!(
            f.reopen_for_section(true).unwrap_err().code,
            ERROR_ACCESS_DENIED
        );
        let ro = f.reopen_for_section(false).unwrap();
        assert_ne!(ro.as_raw_fd(), f.raw_fd());
        let (w, _) = HostFile::open(&p, GENERIC_WRITE, SHARE_ALL, OPEN_EXISTING, 0).unwrap();
        assert_eq!(
            w.reopen_for_section(false).unwrap_err().code,
            ERROR_ACCESS_DENIED
        );
    }

    #[test]
    fn identity_path_and_access() {
        let d = Dir::new("identity");
        let p = d.0.join("f");
        let (f, _) = HostFile::open(&p, GENERIC_ALL, 0, CREATE_NEW, 0).unwrap();
        let st = std::fs::metadata(&p).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(f.identity(), (st.dev(), st.ino()));
        assert_eq!(f.path().unwrap(), std::fs::canonicalize(&p).unwrap());
        assert_eq!(f.access(), FILE_ALL_ACCESS);
        assert!(f.can_execute());
        assert_eq!(
            map_generic(GENERIC_READ | DELETE),
            FILE_GENERIC_READ | DELETE
        );
    }

    #[test]
    fn errno_table() {
        for (e, code) in [
            (Errno::NOENT, 2),
            (Errno::NOTDIR, 3),
            (Errno::ACCESS, 5),
            (Errno::PERM, 5),
            (Errno::ISDIR, 5),
            (Errno::EXIST, 80),
            (Errno::NOSPC, 112),
            (Errno::FBIG, 112),
            (Errno::NAMETOOLONG, 206),
            (Errno::MFILE, 4),
            (Errno::NFILE, 4),
            (Errno::XDEV, 31),
        ] {
            assert_eq!(errno_code(e), code, "{e:?}");
        }
        assert_eq!(host_path(Path::new(r"a\b/c\\d")), Path::new("a/b/c//d"));
    }
}

