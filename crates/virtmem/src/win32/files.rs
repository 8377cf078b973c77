//! The minimal file API of `sections.md` §17 (`Win32::Storage::FileSystem`): enough to
//! create, size, read and write the files that file-backed sections map, from C with no other
//! library.
//!
//! File handles live in the same table as section handles (O5); a handle of another kind, a
//! closed one or a made-up one fails with ERROR_INVALID_HANDLE. Paths are Linux paths, and `\`
//! is accepted as a separator. A strings are UTF-8 (any bytes pass through to the kernel);
//! W strings are UTF-16, and one that is not valid UTF-16 fails with ERROR_INVALID_NAME. I/O is
//! synchronous only: a non-NULL `OVERLAPPED` fails with ERROR_INVALID_PARAMETER (a virtmem
//! rule). The files themselves are `os::linux::files::HostFile`s: see there for share modes,
//! delete on close, the section lock behind ERROR_USER_MAPPED_FILE and the errno table.

use super::consts::*;
use super::last_error::{win32_call, SetLastError};
use super::types::*;
use crate::engine::{HandleEntry, HandleObject, Space};
use crate::error::{Error, Result};
use crate::os::linux::files::{self, FileError, HostFile};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::Arc;

impl From<FileError> for Error {
    /// The typed error for a file API failure: the variant of its Win32 code where there is
    /// one, else `Error::Code`.
    fn from(e: FileError) -> Error {
        match e.code {
            ERROR_FILE_NOT_FOUND => Error::FileNotFound(e.what),
            ERROR_PATH_NOT_FOUND => Error::PathNotFound(e.what),
            ERROR_ACCESS_DENIED => Error::AccessDenied(e.what),
            ERROR_INVALID_HANDLE => Error::InvalidHandle,
            ERROR_NOT_ENOUGH_MEMORY => Error::NotEnoughMemory(e.what),
            ERROR_SHARING_VIOLATION => Error::SharingViolation,
            ERROR_FILE_EXISTS => Error::FileExists,
            ERROR_INVALID_PARAMETER => Error::InvalidParameter(e.what),
            ERROR_DISK_FULL => Error::DiskFull,
            ERROR_NEGATIVE_SEEK => Error::NegativeSeek,
            ERROR_FILENAME_EXCED_RANGE => Error::FilenameTooLong,
            ERROR_USER_MAPPED_FILE => Error::UserMappedFile(e.what),
            code => Error::Code(code),
        }
    }
}

/// The file a handle refers to, or ERROR_INVALID_HANDLE.
fn file_of(h: HANDLE) -> Result<Arc<HostFile>> {
    let entry = Space::native().handles().get(h as usize)?;
    Ok(entry.file()?.clone())
}

/// The length of a NUL-terminated string of `T`.
///
/// # Safety
/// `s` points to a readable string terminated by a zero `T`.
unsafe fn string_len<T: Copy + PartialEq + Default>(s: *const T) -> usize {
    let mut n = 0;
    // SAFETY: the caller guarantees every element up to and including the terminator is
    // readable; the loop stops at the terminator.
    while unsafe { *s.add(n) } != T::default() {
        n += 1;
    }
    n
}

/// The elements of a NUL-terminated string (without the NUL); NULL → `None`.
///
/// # Safety
/// `s` is NULL or points to a readable NUL-terminated string that outlives the slice.
unsafe fn string_slice<'a, T: Copy + PartialEq + Default>(s: *const T) -> Option<&'a [T]> {
    if s.is_null() {
        return None;
    }
    // SAFETY: `s` is a readable NUL-terminated string (caller), so its first `len` elements are
    // readable and stay so for 'a.
    Some(unsafe { std::slice::from_raw_parts(s, string_len(s)) })
}

/// A path from an A string (bytes as they are: UTF-8 on Linux); NULL is the empty path.
///
/// # Safety
/// As [`string_slice`].
unsafe fn path_a(s: PCSTR) -> PathBuf {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { string_slice(s) }.unwrap_or(&[]);
    PathBuf::from(OsString::from_vec(bytes.to_vec()))
}

/// A string from a W string: invalid UTF-16 → ERROR_INVALID_NAME; NULL is the empty string.
///
/// # Safety
/// As [`string_slice`].
unsafe fn string_w(s: PCWSTR) -> Result<String> {
    // SAFETY: forwarded from the caller.
    let units = unsafe { string_slice(s) }.unwrap_or(&[]);
    String::from_utf16(units).map_err(|_| Error::Code(ERROR_INVALID_NAME))
}

/// Copies `src` and a terminating NUL to `dst`.
///
/// # Safety
/// `dst` is writable for `src.len() + 1` elements.
unsafe fn put_string<T: Copy + Default>(dst: *mut T, src: &[T]) {
    // SAFETY: the caller guarantees room for the string and its NUL; `src` is a separate
    // (Rust-owned) buffer, so the ranges do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len());
        *dst.add(src.len()) = T::default();
    }
}

/// CreateFileA/W after the name is converted.
fn create_file(path: PathBuf, access: u32, share: u32, disposition: u32, flags: u32) -> HANDLE {
    win32_call(INVALID_HANDLE_VALUE, || {
        let (file, existed) = HostFile::open(&path, access, share, disposition, flags)?;
        let access = file.access();
        let h = Space::native().handles().insert(HandleEntry {
            object: HandleObject::File(Arc::new(file)),
            access,
        });
        let reopened = existed && matches!(disposition, CREATE_ALWAYS | OPEN_ALWAYS);
        SetLastError(if reopened {
            ERROR_ALREADY_EXISTS
        } else {
            ERROR_SUCCESS
        });
        Ok(h as HANDLE)
    })
}

/// Creates or opens a file (`sections.md` §17); the name is UTF-8. Returns a handle, or
/// INVALID_HANDLE_VALUE and the last error. On success the last error is ERROR_ALREADY_EXISTS
/// when CREATE_ALWAYS or OPEN_ALWAYS found the file, else ERROR_SUCCESS. The security
/// attributes and the template are ignored; of the flags only FILE_FLAG_DELETE_ON_CLOSE acts.
#[no_mangle]
pub unsafe extern "system" fn CreateFileA(
    lpfilename: PCSTR,
    dwdesiredaccess: u32,
    dwsharemode: FILE_SHARE_MODE,
    _lpsecurityattributes: *const SECURITY_ATTRIBUTES,
    dwcreationdisposition: FILE_CREATION_DISPOSITION,
    dwflagsandattributes: FILE_FLAGS_AND_ATTRIBUTES,
    _htemplatefile: HANDLE,
) -> HANDLE {
    // SAFETY: the caller passes NULL or a NUL-terminated string, as CreateFileA requires.
    let path = unsafe { path_a(lpfilename) };
    create_file(
        path,
        dwdesiredaccess,
        dwsharemode,
        dwcreationdisposition,
        dwflagsandattributes,
    )
}

/// CreateFileA with a UTF-16 name (invalid UTF-16 → ERROR_INVALID_NAME).
#[no_mangle]
pub unsafe extern "system" fn CreateFileW(
    lpfilename: PCWSTR,
    dwdesiredaccess: u32,
    dwsharemode: FILE_SHARE_MODE,
    _lpsecurityattributes: *const SECURITY_ATTRIBUTES,
    dwcreationdisposition: FILE_CREATION_DISPOSITION,
    dwflagsandattributes: FILE_FLAGS_AND_ATTRIBUTES,
    _htemplatefile: HANDLE,
) -> HANDLE {
    // SAFETY: the caller passes NULL or a NUL-terminated string, as CreateFileW requires.
    match unsafe { string_w(lpfilename) } {
        Ok(name) => create_file(
            PathBuf::from(name),
            dwdesiredaccess,
            dwsharemode,
            dwcreationdisposition,
            dwflagsandattributes,
        ),
        Err(e) => win32_call(INVALID_HANDLE_VALUE, || Err(e)),
    }
}

/// The checks ReadFile and WriteFile share: synchronous only (`OVERLAPPED` must be NULL,
/// else ERROR_INVALID_PARAMETER, a virtmem rule), the count pointer required (else
/// ERROR_INVALID_PARAMETER), a buffer unless the count is 0 (else ERROR_NOACCESS).
fn io_args(count: *mut u32, overlapped: *mut OVERLAPPED, buf_null: bool, n: u32) -> Result<()> {
    if !overlapped.is_null() {
        return Err(Error::InvalidParameter(
            "virtmem's file I/O is synchronous: lpOverlapped must be NULL",
        ));
    }
    if count.is_null() {
        return Err(Error::InvalidParameter(
            "the byte count pointer is required when lpOverlapped is NULL",
        ));
    }
    if buf_null && n > 0 {
        return Err(Error::NoAccess("NULL buffer"));
    }
    Ok(())
}

/// Reads up to `nnumberofbytestoread` bytes at the file pointer and advances it. At or past
/// the end of the file: TRUE with 0 bytes read, the last error untouched. Needs read access
/// (ERROR_ACCESS_DENIED). `lpoverlapped` must be NULL and `lpnumberofbytesread` not NULL
/// (ERROR_INVALID_PARAMETER); `*lpnumberofbytesread` is set to 0 before anything else.
#[no_mangle]
pub unsafe extern "system" fn ReadFile(
    hfile: HANDLE,
    lpbuffer: *mut u8,
    nnumberofbytestoread: u32,
    lpnumberofbytesread: *mut u32,
    lpoverlapped: *mut OVERLAPPED,
) -> BOOL {
    win32_call(FALSE, || {
        if !lpnumberofbytesread.is_null() {
            // SAFETY: a non-NULL count pointer is writable (the caller's contract).
            unsafe { *lpnumberofbytesread = 0 };
        }
        io_args(
            lpnumberofbytesread,
            lpoverlapped,
            lpbuffer.is_null(),
            nnumberofbytestoread,
        )?;
        let file = file_of(hfile)?;
        let buf: &mut [u8] = if nnumberofbytestoread == 0 {
            &mut []
        } else {
            // SAFETY: the caller's buffer is writable for `nnumberofbytestoread` bytes (the
            // ReadFile contract) and not otherwise borrowed during the call.
            unsafe { std::slice::from_raw_parts_mut(lpbuffer, nnumberofbytestoread as usize) }
        };
        let n = file.read(buf)?;
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { *lpnumberofbytesread = n as u32 };
        Ok(TRUE)
    })
}

/// Writes `nnumberofbytestowrite` bytes at the file pointer, extending the file (a gap before
/// the pointer reads as zeros), and advances the pointer. Needs write access
/// (ERROR_ACCESS_DENIED); a full disk → ERROR_DISK_FULL. `lpoverlapped` must be NULL and
/// `lpnumberofbyteswritten` not NULL (ERROR_INVALID_PARAMETER).
#[no_mangle]
pub unsafe extern "system" fn WriteFile(
    hfile: HANDLE,
    lpbuffer: *const u8,
    nnumberofbytestowrite: u32,
    lpnumberofbyteswritten: *mut u32,
    lpoverlapped: *mut OVERLAPPED,
) -> BOOL {
    win32_call(FALSE, || {
        if !lpnumberofbyteswritten.is_null() {
            // SAFETY: a non-NULL count pointer is writable (the caller's contract).
            unsafe { *lpnumberofbyteswritten = 0 };
        }
        io_args(
            lpnumberofbyteswritten,
            lpoverlapped,
            lpbuffer.is_null(),
            nnumberofbytestowrite,
        )?;
        let file = file_of(hfile)?;
        let buf: &[u8] = if nnumberofbytestowrite == 0 {
            &[]
        } else {
            // SAFETY: the caller's buffer is readable for `nnumberofbytestowrite` bytes (the
            // WriteFile contract).
            unsafe { std::slice::from_raw_parts(lpbuffer, nnumberofbytestowrite as usize) }
        };
        let n = file.write(buf)?;
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { *lpnumberofbyteswritten = n as u32 };
        Ok(TRUE)
    })
}

/// Moves the file pointer and returns the low DWORD of the new position (the high DWORD in
/// `*lpdistancetomovehigh` when it is given). Without `lpdistancetomovehigh` the distance is a
/// signed 32-bit value and the new position must fit 32 bits (else ERROR_INVALID_PARAMETER,
/// pointer unchanged); with it, `*lpdistancetomovehigh:ldistancetomove` is the signed 64-bit
/// distance. A negative position → INVALID_SET_FILE_POINTER and ERROR_NEGATIVE_SEEK, pointer
/// unchanged. Past the end is allowed and does not change the size. A successful result whose
/// low DWORD equals INVALID_SET_FILE_POINTER sets the last error to NO_ERROR, so callers can
/// tell it from a failure.
#[no_mangle]
pub unsafe extern "system" fn SetFilePointer(
    hfile: HANDLE,
    ldistancetomove: i32,
    lpdistancetomovehigh: *mut i32,
    dwmovemethod: SET_FILE_POINTER_MOVE_METHOD,
) -> u32 {
    win32_call(INVALID_SET_FILE_POINTER, || {
        let file = file_of(hfile)?;
        let pos = if lpdistancetomovehigh.is_null() {
            file.seek_limited(
                i64::from(ldistancetomove),
                dwmovemethod,
                u64::from(u32::MAX),
            )?
        } else {
            // SAFETY: a non-NULL high pointer is readable and writable (the caller's contract).
            let high = unsafe { *lpdistancetomovehigh };
            let distance = (i64::from(high) << 32) | i64::from(ldistancetomove as u32);
            let pos = file.seek(distance, dwmovemethod)?;
            // SAFETY: as above.
            unsafe { *lpdistancetomovehigh = (pos >> 32) as i32 };
            pos
        };
        let low = pos as u32;
        if low == INVALID_SET_FILE_POINTER {
            SetLastError(NO_ERROR);
        }
        Ok(low)
    })
}

/// Moves the file pointer by a signed 64-bit distance; the new position goes to
/// `*lpnewfilepointer` if it is not NULL. Errors as SetFilePointer.
#[no_mangle]
pub unsafe extern "system" fn SetFilePointerEx(
    hfile: HANDLE,
    lidistancetomove: i64,
    lpnewfilepointer: *mut i64,
    dwmovemethod: SET_FILE_POINTER_MOVE_METHOD,
) -> BOOL {
    win32_call(FALSE, || {
        let pos = file_of(hfile)?.seek(lidistancetomove, dwmovemethod)?;
        if !lpnewfilepointer.is_null() {
            // SAFETY: a non-NULL result pointer is writable (the caller's contract).
            unsafe { *lpnewfilepointer = pos as i64 };
        }
        Ok(TRUE)
    })
}

/// Makes the file pointer the end of the file: growing fills with zeros; shrinking a file
/// that has a section or a view fails with ERROR_USER_MAPPED_FILE (FB3). Needs write access
/// (ERROR_ACCESS_DENIED).
#[no_mangle]
pub unsafe extern "system" fn SetEndOfFile(hfile: HANDLE) -> BOOL {
    win32_call(FALSE, || {
        file_of(hfile)?.set_end()?;
        Ok(TRUE)
    })
}

/// Returns the low DWORD of the file's size, the high DWORD in `*lpfilesizehigh` if it is not
/// NULL. Failure → INVALID_FILE_SIZE and the last error; a size whose low DWORD is
/// INVALID_FILE_SIZE sets the last error to NO_ERROR, so callers can tell it from a failure.
#[no_mangle]
pub unsafe extern "system" fn GetFileSize(hfile: HANDLE, lpfilesizehigh: *mut u32) -> u32 {
    win32_call(INVALID_FILE_SIZE, || {
        let size = file_of(hfile)?.size()?;
        if !lpfilesizehigh.is_null() {
            // SAFETY: a non-NULL high pointer is writable (the caller's contract).
            unsafe { *lpfilesizehigh = (size >> 32) as u32 };
        }
        let low = size as u32;
        if low == INVALID_FILE_SIZE {
            SetLastError(NO_ERROR);
        }
        Ok(low)
    })
}

/// Stores the file's size in `*lpfilesize` (NULL → ERROR_NOACCESS).
#[no_mangle]
pub unsafe extern "system" fn GetFileSizeEx(hfile: HANDLE, lpfilesize: *mut i64) -> BOOL {
    win32_call(FALSE, || {
        let size = file_of(hfile)?.size()?;
        if lpfilesize.is_null() {
            return Err(Error::NoAccess("NULL size pointer"));
        }
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { *lpfilesize = size as i64 };
        Ok(TRUE)
    })
}

/// Writes the file's data and metadata to the disk (`fsync`). Needs write access
/// (ERROR_ACCESS_DENIED).
#[no_mangle]
pub unsafe extern "system" fn FlushFileBuffers(hfile: HANDLE) -> BOOL {
    win32_call(FALSE, || {
        file_of(hfile)?.flush()?;
        Ok(TRUE)
    })
}

/// Deletes a file (UTF-8 name). Missing → ERROR_FILE_NOT_FOUND (a missing directory →
/// ERROR_PATH_NOT_FOUND); a directory → ERROR_ACCESS_DENIED; open in this process by a handle
/// without FILE_SHARE_DELETE → ERROR_SHARING_VIOLATION.
#[no_mangle]
pub unsafe extern "system" fn DeleteFileA(lpfilename: PCSTR) -> BOOL {
    // SAFETY: the caller passes NULL or a NUL-terminated string.
    let path = unsafe { path_a(lpfilename) };
    win32_call(FALSE, || {
        files::delete(&path)?;
        Ok(TRUE)
    })
}

/// DeleteFileA with a UTF-16 name (invalid UTF-16 → ERROR_INVALID_NAME).
#[no_mangle]
pub unsafe extern "system" fn DeleteFileW(lpfilename: PCWSTR) -> BOOL {
    win32_call(FALSE, || {
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let name = unsafe { string_w(lpfilename) }?;
        files::delete(&PathBuf::from(name))?;
        Ok(TRUE)
    })
}

/// GetTempPathA/W: copies `path` and a NUL to `buf` if `n` leaves room and returns the
/// length without the NUL; else returns the size needed, NUL included, and writes nothing.
///
/// # Safety
/// `buf` is NULL or writable for `n` elements.
unsafe fn temp_path_into<T: Copy + Default>(path: &[T], n: u32, buf: *mut T) -> u32 {
    if buf.is_null() || (n as usize) <= path.len() {
        return path.len() as u32 + 1;
    }
    // SAFETY: `buf` is writable for `n` > `path.len()` elements (caller).
    unsafe { put_string(buf, path) };
    path.len() as u32
}

/// The temporary directory with a trailing `/`: `$TMPDIR` if set and not empty, else `/tmp`
/// (a virtmem rule). Returns its length in bytes without the NUL, or, when `nbufferlength`
/// is too small (or `lpbuffer` NULL), the size needed including the NUL.
#[no_mangle]
pub unsafe extern "system" fn GetTempPathA(nbufferlength: u32, lpbuffer: PSTR) -> u32 {
    let path = files::temp_path();
    // SAFETY: the caller's buffer is NULL or writable for `nbufferlength` bytes.
    unsafe { temp_path_into(path.as_os_str().as_bytes(), nbufferlength, lpbuffer) }
}

/// GetTempPathA in UTF-16 (lengths in UTF-16 units).
#[no_mangle]
pub unsafe extern "system" fn GetTempPathW(nbufferlength: u32, lpbuffer: PWSTR) -> u32 {
    let path: Vec<u16> = files::temp_path()
        .to_string_lossy()
        .encode_utf16()
        .collect();
    // SAFETY: the caller's buffer is NULL or writable for `nbufferlength` UTF-16 units.
    unsafe { temp_path_into(&path, nbufferlength, lpbuffer) }
}

/// GetTempFileNameA/W after the strings are converted: `units` measures a string in the
/// caller's characters (bytes for A, UTF-16 units for W).
fn temp_file_name(
    dir: &str,
    prefix: &str,
    unique: u32,
    units: fn(&str) -> usize,
) -> Result<(PathBuf, u32)> {
    let limit = MAX_PATH as usize;
    if units(dir) > limit - 14 {
        return Err(Error::Code(ERROR_BUFFER_OVERFLOW));
    }
    // The name must fit the MAX_PATH buffer: directory, separator, prefix, 4 hex digits,
    // ".TMP", NUL.
    let short: String = prefix.chars().take(3).collect();
    if units(dir) + 1 + units(&short) + 4 + 4 + 1 > limit {
        return Err(Error::Code(ERROR_BUFFER_OVERFLOW));
    }
    Ok(files::temp_file_name(
        std::path::Path::new(dir),
        prefix,
        unique,
    )?)
}

/// Builds a temporary file name in `lppathname` (UTF-8): the directory, up to three
/// characters of `lpprefixstring`, the number in hex, `.TMP`, written to `lptempfilename`
/// (MAX_PATH bytes). Only the low 16 bits of `uunique` count; 0 → a number not in use is
/// chosen and the file is created empty; otherwise only the name is built. Returns the
/// number, or 0: a NULL directory or output → ERROR_INVALID_PARAMETER, a directory longer
/// than MAX_PATH - 14 → ERROR_BUFFER_OVERFLOW, a prefix that is not UTF-8 →
/// ERROR_INVALID_NAME, a missing directory (when creating) → ERROR_PATH_NOT_FOUND.
#[no_mangle]
pub unsafe extern "system" fn GetTempFileNameA(
    lppathname: PCSTR,
    lpprefixstring: PCSTR,
    uunique: u32,
    lptempfilename: PSTR,
) -> u32 {
    win32_call(0, || {
        if lppathname.is_null() || lptempfilename.is_null() {
            return Err(Error::InvalidParameter("NULL path or output buffer"));
        }
        // SAFETY: the caller passes NUL-terminated strings (the prefix may be NULL).
        let (dir, prefix) = unsafe { (string_slice(lppathname), string_slice(lpprefixstring)) };
        let dir =
            std::str::from_utf8(dir.unwrap_or(&[])).map_err(|_| Error::Code(ERROR_INVALID_NAME))?;
        let prefix = std::str::from_utf8(prefix.unwrap_or(&[]))
            .map_err(|_| Error::Code(ERROR_INVALID_NAME))?;
        let (name, n) = temp_file_name(dir, prefix, uunique, str::len)?;
        // SAFETY: the output buffer holds MAX_PATH bytes (the GetTempFileName contract), and
        // the name and its NUL fit (checked by temp_file_name).
        unsafe { put_string(lptempfilename, name.as_os_str().as_bytes()) };
        Ok(n)
    })
}

/// GetTempFileNameA with UTF-16 strings (lengths in UTF-16 units; invalid UTF-16 →
/// ERROR_INVALID_NAME).
#[no_mangle]
pub unsafe extern "system" fn GetTempFileNameW(
    lppathname: PCWSTR,
    lpprefixstring: PCWSTR,
    uunique: u32,
    lptempfilename: PWSTR,
) -> u32 {
    win32_call(0, || {
        if lppathname.is_null() || lptempfilename.is_null() {
            return Err(Error::InvalidParameter("NULL path or output buffer"));
        }
        // SAFETY: the caller passes NUL-terminated strings (the prefix may be NULL).
        let (dir, prefix) = unsafe { (string_w(lppathname)?, string_w(lpprefixstring)?) };
        let (name, n) = temp_file_name(&dir, &prefix, uunique, |s| s.encode_utf16().count())?;
        let wide: Vec<u16> = name.to_string_lossy().encode_utf16().collect();
        // SAFETY: the output buffer holds MAX_PATH UTF-16 units (the GetTempFileName
        // contract), and the name and its NUL fit (checked by temp_file_name).
        unsafe { put_string(lptempfilename, &wide) };
        Ok(n)
    })
}
