//! The minimal file API of `sections.md` §17 through the Win32 face: CreateFile dispositions,
//! share modes, access checks, the file pointer, SetEndOfFile (and the section rule FB3),
//! sizes, DeleteFile, GetTempPath and GetTempFileName, and bad handles (O5).
//!
//! Every test works in a directory of its own under the temporary directory and removes it.
//! The tests hold one lock while they run: a closed handle value can be given out again by
//! the process-wide handle table, so no other test may open a file while one checks that a
//! closed handle is refused.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};
use std::sync::{Mutex, MutexGuard};
use virtmem::win32::*;

static SERIAL: Mutex<()> = Mutex::new(());

/// A directory of its own for one test (removed on drop), holding the test lock.
struct Scratch {
    dir: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = std::env::temp_dir().join(format!("virtmem-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch {
            dir,
            _serial: serial,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const RW: u32 = GENERIC_READ | GENERIC_WRITE;
const SHARE_RW: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE;
const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
/// A last-error value no call sets, to see whether a call touched it.
const UNTOUCHED: u32 = 0xDEAD;

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0]).collect()
}

/// CreateFileA; returns the handle (or INVALID_HANDLE_VALUE) and the last error after it.
fn create(path: &Path, access: u32, share: u32, disposition: u32, flags: u32) -> (HANDLE, u32) {
    let name = cstr(path);
    SetLastError(UNTOUCHED);
    // SAFETY: a NUL-terminated name; no security attributes or template.
    let h = unsafe {
        CreateFileA(
            name.as_ptr().cast(),
            access,
            share,
            null(),
            disposition,
            flags,
            null_mut(),
        )
    };
    (h, GetLastError())
}

/// Opens `path` and asserts success.
fn open(path: &Path, access: u32, share: u32, disposition: u32) -> HANDLE {
    let (h, err) = create(path, access, share, disposition, FILE_ATTRIBUTE_NORMAL);
    assert_ne!(h, INVALID_HANDLE_VALUE, "open {path:?}: error {err}");
    h
}

fn close(h: HANDLE) {
    // SAFETY: closing a handle value is always safe to try.
    assert_eq!(unsafe { CloseHandle(h) }, TRUE);
}

/// WriteFile of all of `data`; returns the result and the bytes written.
fn write(h: HANDLE, data: &[u8]) -> (BOOL, u32) {
    let mut n = 0xFFFF_FFFF;
    // SAFETY: `data` is readable for its length; `n` is writable.
    let ok = unsafe { WriteFile(h, data.as_ptr(), data.len() as u32, &mut n, null_mut()) };
    (ok, n)
}

/// ReadFile of up to `len` bytes; returns the result and the bytes read.
fn read(h: HANDLE, len: usize) -> (BOOL, Vec<u8>) {
    let mut buf = vec![0xAAu8; len];
    let mut n = 0xFFFF_FFFF;
    // SAFETY: `buf` is writable for `len` bytes; `n` is writable.
    let ok = unsafe { ReadFile(h, buf.as_mut_ptr(), len as u32, &mut n, null_mut()) };
    buf.truncate(if ok == TRUE { n as usize } else { 0 });
    (ok, buf)
}

fn seek(h: HANDLE, distance: i64, method: u32) -> u64 {
    let mut pos = -1i64;
    // SAFETY: `pos` is writable.
    assert_eq!(
        unsafe { SetFilePointerEx(h, distance, &mut pos, method) },
        TRUE
    );
    pos as u64
}

fn size(h: HANDLE) -> u64 {
    let mut s = -1i64;
    // SAFETY: `s` is writable.
    assert_eq!(unsafe { GetFileSizeEx(h, &mut s) }, TRUE);
    s as u64
}

fn set_end(h: HANDLE) -> (BOOL, u32) {
    SetLastError(UNTOUCHED);
    // SAFETY: any handle value may be passed.
    let ok = unsafe { SetEndOfFile(h) };
    (ok, GetLastError())
}

fn delete(path: &Path) -> (BOOL, u32) {
    let name = cstr(path);
    SetLastError(UNTOUCHED);
    // SAFETY: a NUL-terminated name.
    let ok = unsafe { DeleteFileA(name.as_ptr().cast()) };
    (ok, GetLastError())
}

// ---------------------------------------------------------------------------------------------
// CreateFile
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Before {
    /// A file holding "hello".
    File,
    /// Nothing of that name.
    Missing,
    /// The name's directory is missing too.
    MissingDir,
    /// A directory of that name.
    Dir,
}

/// One CreateFile case: disposition, what is there, access, and Ok(last error, size after)
/// or Err(error).
type DispositionCase = (u32, Before, u32, Result<(u32, u64), u32>);

#[test]
fn create_file_dispositions() {
    use Before::*;
    let cases: &[DispositionCase] = &[
        (CREATE_NEW, File, RW, Err(ERROR_FILE_EXISTS)),
        (CREATE_NEW, Missing, RW, Ok((ERROR_SUCCESS, 0))),
        (CREATE_NEW, MissingDir, RW, Err(ERROR_PATH_NOT_FOUND)),
        (CREATE_NEW, Dir, RW, Err(ERROR_FILE_EXISTS)),
        (CREATE_ALWAYS, File, RW, Ok((ERROR_ALREADY_EXISTS, 0))),
        (
            CREATE_ALWAYS,
            File,
            GENERIC_READ,
            Ok((ERROR_ALREADY_EXISTS, 0)),
        ),
        (CREATE_ALWAYS, Missing, RW, Ok((ERROR_SUCCESS, 0))),
        (CREATE_ALWAYS, MissingDir, RW, Err(ERROR_PATH_NOT_FOUND)),
        (CREATE_ALWAYS, Dir, RW, Err(ERROR_ACCESS_DENIED)),
        (OPEN_EXISTING, File, RW, Ok((ERROR_SUCCESS, 5))),
        (OPEN_EXISTING, File, GENERIC_READ, Ok((ERROR_SUCCESS, 5))),
        (OPEN_EXISTING, File, 0, Ok((ERROR_SUCCESS, 5))),
        (OPEN_EXISTING, Missing, RW, Err(ERROR_FILE_NOT_FOUND)),
        (OPEN_EXISTING, MissingDir, RW, Err(ERROR_PATH_NOT_FOUND)),
        (OPEN_EXISTING, Dir, GENERIC_READ, Err(ERROR_ACCESS_DENIED)),
        (OPEN_EXISTING, Dir, RW, Err(ERROR_ACCESS_DENIED)),
        (OPEN_ALWAYS, File, RW, Ok((ERROR_ALREADY_EXISTS, 5))),
        (OPEN_ALWAYS, Missing, RW, Ok((ERROR_SUCCESS, 0))),
        (OPEN_ALWAYS, MissingDir, RW, Err(ERROR_PATH_NOT_FOUND)),
        (OPEN_ALWAYS, Dir, GENERIC_READ, Err(ERROR_ACCESS_DENIED)),
        (TRUNCATE_EXISTING, File, RW, Ok((ERROR_SUCCESS, 0))),
        (
            TRUNCATE_EXISTING,
            File,
            GENERIC_READ,
            Err(ERROR_INVALID_PARAMETER),
        ),
        (TRUNCATE_EXISTING, Missing, RW, Err(ERROR_FILE_NOT_FOUND)),
        (TRUNCATE_EXISTING, MissingDir, RW, Err(ERROR_PATH_NOT_FOUND)),
        (TRUNCATE_EXISTING, Dir, RW, Err(ERROR_ACCESS_DENIED)),
        (0, File, RW, Err(ERROR_INVALID_PARAMETER)),
        (6, Missing, RW, Err(ERROR_INVALID_PARAMETER)),
    ];
    let s = Scratch::new("dispositions");
    for (i, &(disposition, before, access, want)) in cases.iter().enumerate() {
        let what = format!("case {i}: disposition {disposition}, {before:?}, access {access:#x}");
        let path = match before {
            MissingDir => s.path(&format!("nodir{i}")).join("f"),
            _ => s.path(&format!("f{i}")),
        };
        match before {
            File => std::fs::write(&path, b"hello").unwrap(),
            Dir => std::fs::create_dir(&path).unwrap(),
            Missing | MissingDir => {}
        }
        let (h, err) = create(&path, access, SHARE_ALL, disposition, FILE_ATTRIBUTE_NORMAL);
        match want {
            Ok((last_error, size_after)) => {
                assert_ne!(h, INVALID_HANDLE_VALUE, "{what}: failed with {err}");
                assert_eq!(err, last_error, "{what}: last error");
                assert_eq!(
                    h as usize % 4,
                    0,
                    "{what}: handle values are multiples of 4"
                );
                assert!(!h.is_null());
                close(h);
                assert_eq!(
                    std::fs::metadata(&path).unwrap().len(),
                    size_after,
                    "{what}"
                );
            }
            Err(code) => {
                assert_eq!(h, INVALID_HANDLE_VALUE, "{what}: succeeded");
                assert_eq!(err, code, "{what}: error");
                match before {
                    File => assert_eq!(std::fs::read(&path).unwrap(), b"hello", "{what}"),
                    Missing | MissingDir => assert!(!path.exists(), "{what}: created"),
                    Dir => assert!(path.is_dir()),
                }
            }
        }
    }
}

#[test]
fn create_file_paths() {
    let s = Scratch::new("paths");
    // `\` is a separator.
    std::fs::create_dir(s.path("sub")).unwrap();
    let backslashed = PathBuf::from(format!("{}\\sub\\x.bin", s.dir.display()));
    let h = open(&backslashed, RW, 0, CREATE_NEW);
    close(h);
    assert!(s.path("sub/x.bin").exists());
    // The empty name.
    let (h, err) = create(Path::new(""), RW, 0, OPEN_ALWAYS, 0);
    assert_eq!((h, err), (INVALID_HANDLE_VALUE, ERROR_PATH_NOT_FOUND));
    // W names: UTF-16, non-ASCII included; invalid UTF-16 is refused.
    let name = format!("{}/é-ü.bin", s.dir.display());
    let w = wide(&name);
    SetLastError(UNTOUCHED);
    // SAFETY: a NUL-terminated UTF-16 name.
    let h = unsafe { CreateFileW(w.as_ptr(), RW, 0, null(), CREATE_NEW, 0, null_mut()) };
    assert_ne!(h, INVALID_HANDLE_VALUE);
    assert_eq!(GetLastError(), ERROR_SUCCESS);
    close(h);
    assert!(Path::new(&name).exists());
    let bad = [0x61u16, 0xD800, 0x62, 0];
    // SAFETY: a NUL-terminated UTF-16 array.
    let h = unsafe { CreateFileW(bad.as_ptr(), RW, 0, null(), CREATE_NEW, 0, null_mut()) };
    assert_eq!(h, INVALID_HANDLE_VALUE);
    assert_eq!(GetLastError(), ERROR_INVALID_NAME);
    // SAFETY: a NUL-terminated UTF-16 name.
    assert_eq!(unsafe { DeleteFileW(w.as_ptr()) }, TRUE);
    assert!(!Path::new(&name).exists());
}

#[test]
fn share_modes_within_the_process() {
    const R: u32 = GENERIC_READ;
    const W: u32 = GENERIC_WRITE;
    // (first access, first share, second access, second share, second succeeds)
    let cases: &[(u32, u32, u32, u32, bool)] = &[
        (R, FILE_SHARE_READ, R, FILE_SHARE_READ, true),
        (R, FILE_SHARE_READ, W, SHARE_RW, false),
        (R, SHARE_RW, W, SHARE_RW, true),
        (R, SHARE_RW, R, FILE_SHARE_READ, true),
        (W, SHARE_RW, R, FILE_SHARE_READ, false),
        (W, FILE_SHARE_WRITE, W, FILE_SHARE_WRITE, true),
        (W, FILE_SHARE_WRITE, R, SHARE_RW, false),
        (R, 0, R, SHARE_ALL, false),
        (RW, SHARE_RW, RW, SHARE_RW, true),
        (RW, SHARE_RW, RW, FILE_SHARE_READ, false),
        // Opens without data access neither check nor count.
        (0, 0, RW, 0, true),
        (RW, 0, 0, 0, true),
        (FILE_READ_ATTRIBUTES, 0, RW, 0, true),
        // DELETE counts.
        (DELETE, SHARE_RW, R, SHARE_RW, false),
        (DELETE, SHARE_ALL, R, SHARE_ALL, true),
        (R, SHARE_RW, DELETE, SHARE_ALL, false),
    ];
    let s = Scratch::new("share");
    for (i, &(a1, s1, a2, s2, ok)) in cases.iter().enumerate() {
        let what = format!("case {i}: ({a1:#x}, {s1}) then ({a2:#x}, {s2})");
        let path = s.path(&format!("f{i}"));
        std::fs::write(&path, b"data").unwrap();
        let first = open(&path, a1, s1, OPEN_EXISTING);
        let (second, err) = create(&path, a2, s2, OPEN_EXISTING, 0);
        if ok {
            assert_ne!(second, INVALID_HANDLE_VALUE, "{what}: failed with {err}");
            close(second);
        } else {
            assert_eq!(
                (second, err),
                (INVALID_HANDLE_VALUE, ERROR_SHARING_VIOLATION),
                "{what}"
            );
            // A refused CREATE_ALWAYS truncates nothing.
            let (h, err) = create(&path, a2, s2, CREATE_ALWAYS, 0);
            assert_eq!((h, err), (INVALID_HANDLE_VALUE, ERROR_SHARING_VIOLATION));
            assert_eq!(std::fs::read(&path).unwrap(), b"data", "{what}");
        }
        close(first);
        // Once the first handle is closed, anything goes.
        let again = open(&path, a2, s2, OPEN_EXISTING);
        close(again);
    }
}

#[test]
fn duplicate_opens_have_their_own_pointers() {
    let s = Scratch::new("pointers");
    let path = s.path("f");
    let a = open(&path, RW, SHARE_RW, CREATE_NEW);
    let b = open(&path, RW, SHARE_RW, OPEN_EXISTING);
    assert_eq!(write(a, b"0123456789"), (TRUE, 10));
    assert_eq!(read(b, 4), (TRUE, b"0123".to_vec()));
    assert_eq!(seek(a, 0, FILE_CURRENT), 10);
    assert_eq!(seek(b, 0, FILE_CURRENT), 4);
    assert_eq!(write(b, b"ab"), (TRUE, 2));
    assert_eq!(seek(a, 0, FILE_BEGIN), 0);
    assert_eq!(read(a, 100), (TRUE, b"0123ab6789".to_vec()));
    close(a);
    close(b);
}

#[test]
fn access_rights_are_checked() {
    let s = Scratch::new("access");
    let path = s.path("f");
    std::fs::write(&path, b"data").unwrap();
    let ro = open(&path, GENERIC_READ, SHARE_ALL, OPEN_EXISTING);
    SetLastError(UNTOUCHED);
    assert_eq!(write(ro, b"x"), (FALSE, 0));
    assert_eq!(GetLastError(), ERROR_ACCESS_DENIED);
    assert_eq!(set_end(ro), (FALSE, ERROR_ACCESS_DENIED));
    // SAFETY: any handle value may be passed.
    assert_eq!(unsafe { FlushFileBuffers(ro) }, FALSE);
    assert_eq!(GetLastError(), ERROR_ACCESS_DENIED);
    assert_eq!(read(ro, 10), (TRUE, b"data".to_vec()));
    close(ro);

    let wo = open(&path, GENERIC_WRITE, SHARE_ALL, OPEN_EXISTING);
    SetLastError(UNTOUCHED);
    assert_eq!(read(wo, 4), (FALSE, vec![]));
    assert_eq!(GetLastError(), ERROR_ACCESS_DENIED);
    assert_eq!(write(wo, b"DA"), (TRUE, 2));
    // SAFETY: any handle value may be passed.
    assert_eq!(unsafe { FlushFileBuffers(wo) }, TRUE);
    close(wo);
    assert_eq!(std::fs::read(&path).unwrap(), b"DAta");

    // FILE_* data rights work like the generic ones.
    let h = open(
        &path,
        FILE_READ_DATA | FILE_WRITE_DATA,
        SHARE_ALL,
        OPEN_EXISTING,
    );
    assert_eq!(read(h, 2), (TRUE, b"DA".to_vec()));
    assert_eq!(write(h, b"TA"), (TRUE, 2));
    close(h);
    assert_eq!(std::fs::read(&path).unwrap(), b"DATA");
}

// ---------------------------------------------------------------------------------------------
// ReadFile, WriteFile, the file pointer
// ---------------------------------------------------------------------------------------------

#[test]
fn read_and_write_arguments() {
    let s = Scratch::new("io-args");
    let h = open(&s.path("f"), RW, 0, CREATE_NEW);
    assert_eq!(write(h, b"abc"), (TRUE, 3));
    // At the end of the file: TRUE, 0 bytes, last error untouched.
    SetLastError(UNTOUCHED);
    assert_eq!(read(h, 10), (TRUE, vec![]));
    assert_eq!(GetLastError(), UNTOUCHED);
    seek(h, 100, FILE_BEGIN);
    assert_eq!(read(h, 10), (TRUE, vec![]));
    assert_eq!(GetLastError(), UNTOUCHED);
    // Zero-byte write: nothing changes.
    assert_eq!(write(h, b""), (TRUE, 0));
    assert_eq!(size(h), 3);

    let mut buf = [0u8; 4];
    let mut n = 7u32;
    let mut ov = OVERLAPPED::default();
    // SAFETY: valid buffers; an OVERLAPPED is refused before anything is done.
    unsafe {
        assert_eq!(ReadFile(h, buf.as_mut_ptr(), 4, &mut n, &mut ov), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER);
        assert_eq!(n, 0, "the count is zeroed first");
        assert_eq!(
            ReadFile(h, buf.as_mut_ptr(), 4, null_mut(), null_mut()),
            FALSE
        );
        assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER);
        assert_eq!(WriteFile(h, buf.as_ptr(), 4, &mut n, &mut ov), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER);
        assert_eq!(WriteFile(h, buf.as_ptr(), 4, null_mut(), null_mut()), FALSE);
        assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER);
        assert_eq!(ReadFile(h, null_mut(), 4, &mut n, null_mut()), FALSE);
        assert_eq!(GetLastError(), ERROR_NOACCESS);
    }
    close(h);
}

#[test]
fn writing_past_the_end_leaves_zeros() {
    let s = Scratch::new("gap");
    let h = open(&s.path("f"), RW, 0, CREATE_NEW);
    assert_eq!(write(h, b"ab"), (TRUE, 2));
    assert_eq!(seek(h, 6, FILE_BEGIN), 6);
    assert_eq!(size(h), 2, "moving the pointer does not change the size");
    assert_eq!(write(h, b"z"), (TRUE, 1));
    assert_eq!(size(h), 7);
    seek(h, 0, FILE_BEGIN);
    assert_eq!(read(h, 100), (TRUE, b"ab\0\0\0\0z".to_vec()));
    close(h);
}

#[test]
fn set_file_pointer() {
    let s = Scratch::new("pointer");
    let h = open(&s.path("f"), RW, 0, CREATE_NEW);
    assert_eq!(write(h, &[1u8; 100]), (TRUE, 100));
    // SAFETY: `hi` is writable where passed; any handle value may be passed.
    unsafe {
        SetLastError(UNTOUCHED);
        assert_eq!(SetFilePointer(h, 10, null_mut(), FILE_BEGIN), 10);
        assert_eq!(SetFilePointer(h, 5, null_mut(), FILE_CURRENT), 15);
        assert_eq!(SetFilePointer(h, -20, null_mut(), FILE_END), 80);
        assert_eq!(GetLastError(), UNTOUCHED, "success leaves the last error");
        // Before the start: fails, the pointer stays.
        assert_eq!(
            SetFilePointer(h, -81, null_mut(), FILE_CURRENT),
            INVALID_SET_FILE_POINTER
        );
        assert_eq!(GetLastError(), ERROR_NEGATIVE_SEEK);
        assert_eq!(SetFilePointer(h, 0, null_mut(), FILE_CURRENT), 80);
        let mut pos = 0i64;
        assert_eq!(SetFilePointerEx(h, -200, &mut pos, FILE_END), FALSE);
        assert_eq!(GetLastError(), ERROR_NEGATIVE_SEEK);
        // An unknown method.
        assert_eq!(
            SetFilePointer(h, 0, null_mut(), 3),
            INVALID_SET_FILE_POINTER
        );
        assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER);
        // Past the end: allowed, the size stays.
        assert_eq!(SetFilePointer(h, 1000, null_mut(), FILE_END), 1100);
        assert_eq!(size(h), 100);
        // 64-bit distances through the high DWORD.
        let mut hi = 1i32;
        assert_eq!(SetFilePointer(h, 8, &mut hi, FILE_BEGIN), 8);
        assert_eq!(hi, 1);
        assert_eq!(seek(h, 0, FILE_CURRENT), (1 << 32) + 8);
        let mut hi = -1i32;
        assert_eq!(SetFilePointer(h, -8, &mut hi, FILE_CURRENT), 0);
        assert_eq!(hi, 1);
        // Without the high DWORD the new position must fit 32 bits.
        assert_eq!(seek(h, 0xFFFF_FFF0, FILE_BEGIN), 0xFFFF_FFF0);
        assert_eq!(
            SetFilePointer(h, 0x20, null_mut(), FILE_CURRENT),
            INVALID_SET_FILE_POINTER
        );
        assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER);
        assert_eq!(seek(h, 0, FILE_CURRENT), 0xFFFF_FFF0);
        // A position whose low DWORD is INVALID_SET_FILE_POINTER: the last error says success.
        SetLastError(UNTOUCHED);
        assert_eq!(
            SetFilePointer(h, 0xF, null_mut(), FILE_CURRENT),
            INVALID_SET_FILE_POINTER
        );
        assert_eq!(GetLastError(), NO_ERROR);
        assert_eq!(SetFilePointerEx(h, 5, null_mut(), FILE_BEGIN), TRUE);
        assert_eq!(SetFilePointer(h, 0, null_mut(), FILE_CURRENT), 5);
    }
    assert_eq!(size(h), 100);
    close(h);
}

// ---------------------------------------------------------------------------------------------
// SetEndOfFile, sizes, FlushFileBuffers
// ---------------------------------------------------------------------------------------------

#[test]
fn set_end_of_file_grows_with_zeros_and_shrinks() {
    let s = Scratch::new("eof");
    let h = open(&s.path("f"), RW, 0, CREATE_NEW);
    assert_eq!(write(h, b"abcdef"), (TRUE, 6));
    seek(h, 10, FILE_BEGIN);
    assert_eq!(set_end(h), (TRUE, UNTOUCHED));
    assert_eq!(size(h), 10);
    seek(h, 0, FILE_BEGIN);
    assert_eq!(read(h, 100), (TRUE, b"abcdef\0\0\0\0".to_vec()));
    seek(h, 3, FILE_BEGIN);
    assert_eq!(set_end(h), (TRUE, UNTOUCHED));
    assert_eq!(size(h), 3);
    assert_eq!(seek(h, 0, FILE_CURRENT), 3);
    seek(h, 0, FILE_BEGIN);
    assert_eq!(read(h, 100), (TRUE, b"abc".to_vec()));
    // SAFETY: any handle value may be passed.
    assert_eq!(unsafe { FlushFileBuffers(h) }, TRUE);
    close(h);
}

#[test]
fn file_sizes_beyond_4_gib() {
    let s = Scratch::new("size");
    let h = open(&s.path("f"), RW, 0, CREATE_NEW);
    let mut hi = 7u32;
    // SAFETY: `hi` is writable.
    assert_eq!(unsafe { GetFileSize(h, &mut hi) }, 0);
    assert_eq!(hi, 0);
    // A sparse file of 4 GiB + 5 bytes.
    seek(h, (1 << 32) + 5, FILE_BEGIN);
    assert_eq!(set_end(h).0, TRUE);
    // SAFETY: `hi` is writable.
    assert_eq!(unsafe { GetFileSize(h, &mut hi) }, 5);
    assert_eq!(hi, 1);
    assert_eq!(size(h), (1 << 32) + 5);
    // A size whose low DWORD is INVALID_FILE_SIZE: the last error says success.
    seek(h, 0xFFFF_FFFF, FILE_BEGIN);
    assert_eq!(set_end(h).0, TRUE);
    SetLastError(UNTOUCHED);
    // SAFETY: NULL high pointer is allowed.
    assert_eq!(unsafe { GetFileSize(h, null_mut()) }, INVALID_FILE_SIZE);
    assert_eq!(GetLastError(), NO_ERROR);
    // SAFETY: a NULL result pointer.
    assert_eq!(unsafe { GetFileSizeEx(h, null_mut()) }, FALSE);
    assert_eq!(GetLastError(), ERROR_NOACCESS);
    close(h);
}

/// A section holds an OFD read lock on its file (`os::linux::files::reopen_for_section`);
/// this emulates one with a descriptor of its own.
struct SectionLock {
    _held: std::fs::File,
}

impl SectionLock {
    fn take(path: &Path) -> SectionLock {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(path).unwrap();
        // SAFETY: all-zero is a valid `struct flock` (l_pid must be 0 for OFD locks).
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_RDLCK as _;
        fl.l_whence = libc::SEEK_SET as _;
        // SAFETY: `f` is open; `fl` is a valid flock the kernel reads.
        let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
        assert_eq!(r, 0, "F_OFD_SETLK: {}", std::io::Error::last_os_error());
        SectionLock { _held: f }
    }
}

#[test]
fn a_section_stops_shrinking_not_growing() {
    let s = Scratch::new("mapped");
    let path = s.path("f");
    let h = open(&path, RW, SHARE_ALL, CREATE_NEW);
    assert_eq!(write(h, &[3u8; 8192]), (TRUE, 8192));
    let lock = SectionLock::take(&path);
    // Shrinking, even by a byte, fails and the size stays (FB3).
    seek(h, 8191, FILE_BEGIN);
    assert_eq!(set_end(h), (FALSE, ERROR_USER_MAPPED_FILE));
    assert_eq!(size(h), 8192);
    seek(h, 0, FILE_BEGIN);
    assert_eq!(set_end(h), (FALSE, ERROR_USER_MAPPED_FILE));
    // Truncating through CreateFile too.
    let (h2, err) = create(&path, RW, SHARE_ALL, TRUNCATE_EXISTING, 0);
    assert_eq!((h2, err), (INVALID_HANDLE_VALUE, ERROR_USER_MAPPED_FILE));
    // A refused delete-on-close open deletes nothing.
    let (h2, err) = create(
        &path,
        RW,
        SHARE_ALL,
        CREATE_ALWAYS,
        FILE_FLAG_DELETE_ON_CLOSE,
    );
    assert_eq!((h2, err), (INVALID_HANDLE_VALUE, ERROR_USER_MAPPED_FILE));
    assert!(path.exists());
    assert_eq!(size(h), 8192);
    // Growing works; setting the same size too.
    seek(h, 8192, FILE_BEGIN);
    assert_eq!(set_end(h), (TRUE, UNTOUCHED));
    seek(h, 16384, FILE_BEGIN);
    assert_eq!(set_end(h), (TRUE, UNTOUCHED));
    assert_eq!(size(h), 16384);
    // The section gone, shrinking works.
    drop(lock);
    seek(h, 100, FILE_BEGIN);
    assert_eq!(set_end(h), (TRUE, UNTOUCHED));
    assert_eq!(size(h), 100);
    close(h);
}

// ---------------------------------------------------------------------------------------------
// DeleteFile, delete on close
// ---------------------------------------------------------------------------------------------

#[test]
fn delete_file() {
    let s = Scratch::new("delete");
    assert_eq!(delete(&s.path("missing")), (FALSE, ERROR_FILE_NOT_FOUND));
    assert_eq!(
        delete(&s.path("nodir").join("f")),
        (FALSE, ERROR_PATH_NOT_FOUND)
    );
    std::fs::create_dir(s.path("dir")).unwrap();
    assert_eq!(delete(&s.path("dir")), (FALSE, ERROR_ACCESS_DENIED));
    let path = s.path("f");
    std::fs::write(&path, b"x").unwrap();
    // Open without FILE_SHARE_DELETE: refused.
    let h = open(&path, GENERIC_READ, SHARE_RW, OPEN_EXISTING);
    assert_eq!(delete(&path), (FALSE, ERROR_SHARING_VIOLATION));
    close(h);
    // Open with FILE_SHARE_DELETE: deleted.
    let h = open(&path, GENERIC_READ, SHARE_ALL, OPEN_EXISTING);
    assert_eq!(delete(&path), (TRUE, UNTOUCHED));
    assert!(!path.exists());
    assert_eq!(read(h, 10), (TRUE, b"x".to_vec()));
    close(h);
    assert_eq!(delete(&path), (FALSE, ERROR_FILE_NOT_FOUND));
}

#[test]
fn delete_on_close() {
    let s = Scratch::new("delete-on-close");
    let path = s.path("f");
    let (h, err) = create(
        &path,
        RW,
        SHARE_ALL,
        CREATE_NEW,
        FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE,
    );
    assert_ne!(h, INVALID_HANDLE_VALUE, "error {err}");
    assert_eq!(write(h, b"temp"), (TRUE, 4));
    // The open asked for DELETE: later opens must share delete.
    let (h2, err) = create(&path, GENERIC_READ, SHARE_RW, OPEN_EXISTING, 0);
    assert_eq!((h2, err), (INVALID_HANDLE_VALUE, ERROR_SHARING_VIOLATION));
    let other = open(&path, GENERIC_READ, SHARE_ALL, OPEN_EXISTING);
    close(h);
    // Delete pending: still there while a handle is open, but no new opens.
    assert!(path.exists());
    let (h3, err) = create(&path, GENERIC_READ, SHARE_ALL, OPEN_EXISTING, 0);
    assert_eq!((h3, err), (INVALID_HANDLE_VALUE, ERROR_ACCESS_DENIED));
    assert_eq!(read(other, 10), (TRUE, b"temp".to_vec()));
    close(other);
    assert!(!path.exists());

    // One handle only: gone at its close.
    let (h, _) = create(&path, RW, 0, CREATE_NEW, FILE_FLAG_DELETE_ON_CLOSE);
    assert_ne!(h, INVALID_HANDLE_VALUE);
    assert!(path.exists());
    close(h);
    assert!(!path.exists());
}

// ---------------------------------------------------------------------------------------------
// GetTempPath, GetTempFileName
// ---------------------------------------------------------------------------------------------

fn expected_temp_path() -> String {
    let mut p = match std::env::var("TMPDIR") {
        Ok(d) if !d.is_empty() => d,
        _ => "/tmp".to_string(),
    };
    if !p.ends_with('/') {
        p.push('/');
    }
    p
}

#[test]
fn get_temp_path() {
    let _s = Scratch::new("temp-path");
    let want = expected_temp_path();
    let len = want.len() as u32;
    let mut buf = [0xFFu8; 512];
    // SAFETY: `buf` is writable for the lengths passed.
    unsafe {
        assert_eq!(GetTempPathA(buf.len() as u32, buf.as_mut_ptr()), len);
        assert_eq!(&buf[..want.len()], want.as_bytes());
        assert_eq!(buf[want.len()], 0);
        // Too small (no room for the NUL): the size needed, NUL included; nothing written.
        let mut small = [0xFFu8; 512];
        assert_eq!(GetTempPathA(len, small.as_mut_ptr()), len + 1);
        assert_eq!(small[0], 0xFF);
        assert_eq!(GetTempPathA(0, null_mut()), len + 1);
        assert_eq!(GetTempPathA(len + 1, small.as_mut_ptr()), len);

        let w = wide(&want);
        let mut wbuf = [0xFFFFu16; 512];
        let wlen = w.len() as u32 - 1;
        assert_eq!(GetTempPathW(wbuf.len() as u32, wbuf.as_mut_ptr()), wlen);
        assert_eq!(&wbuf[..w.len()], &w[..]);
        assert_eq!(GetTempPathW(1, wbuf.as_mut_ptr()), wlen + 1);
    }
}

#[test]
fn get_temp_file_name() {
    let s = Scratch::new("temp-name");
    let dir = cstr(&s.dir);
    let prefix = CString::new("abcdef").unwrap();
    let mut out = [0u8; MAX_PATH as usize];
    let name = |out: &[u8]| {
        let end = out.iter().position(|&b| b == 0).unwrap();
        String::from_utf8(out[..end].to_vec()).unwrap()
    };
    // SAFETY: NUL-terminated strings; `out` holds MAX_PATH bytes.
    unsafe {
        // Non-zero: the name only (low 16 bits, upper-case hex), nothing created.
        let n = GetTempFileNameA(
            dir.as_ptr().cast(),
            prefix.as_ptr().cast(),
            0x1_2A3F,
            out.as_mut_ptr(),
        );
        assert_eq!(n, 0x2A3F);
        let built = name(&out);
        assert_eq!(built, format!("{}/abc2A3F.TMP", s.dir.display()));
        assert!(!Path::new(&built).exists());

        // Zero: a new number, and the file is created empty.
        let n1 = GetTempFileNameA(
            dir.as_ptr().cast(),
            prefix.as_ptr().cast(),
            0,
            out.as_mut_ptr(),
        );
        assert_ne!(n1, 0);
        let first = name(&out);
        assert_eq!(first, format!("{}/abc{n1:X}.TMP", s.dir.display()));
        assert_eq!(std::fs::metadata(&first).unwrap().len(), 0);
        let n2 = GetTempFileNameA(dir.as_ptr().cast(), null(), 0, out.as_mut_ptr());
        assert_ne!(n2, 0);
        let second = name(&out);
        assert_ne!(first, second);
        assert_eq!(second, format!("{}/{n2:X}.TMP", s.dir.display()));
        assert!(Path::new(&second).exists());

        // A trailing separator is not doubled.
        let slash = CString::new(format!("{}/", s.dir.display())).unwrap();
        assert_eq!(
            GetTempFileNameA(
                slash.as_ptr().cast(),
                prefix.as_ptr().cast(),
                7,
                out.as_mut_ptr()
            ),
            7
        );
        assert_eq!(name(&out), format!("{}/abc7.TMP", s.dir.display()));

        // A missing directory: creating fails, building does not.
        let missing = cstr(&s.path("nodir"));
        SetLastError(UNTOUCHED);
        assert_eq!(
            GetTempFileNameA(
                missing.as_ptr().cast(),
                prefix.as_ptr().cast(),
                0,
                out.as_mut_ptr()
            ),
            0
        );
        assert_eq!(GetLastError(), ERROR_PATH_NOT_FOUND);
        assert_eq!(
            GetTempFileNameA(
                missing.as_ptr().cast(),
                prefix.as_ptr().cast(),
                1,
                out.as_mut_ptr()
            ),
            1
        );

        // A directory longer than MAX_PATH - 14, and NULL arguments.
        let long = CString::new("/".repeat(MAX_PATH as usize - 13)).unwrap();
        assert_eq!(
            GetTempFileNameA(
                long.as_ptr().cast(),
                prefix.as_ptr().cast(),
                1,
                out.as_mut_ptr()
            ),
            0
        );
        assert_eq!(GetLastError(), ERROR_BUFFER_OVERFLOW);
        assert_eq!(GetTempFileNameA(null(), null(), 1, out.as_mut_ptr()), 0);
        assert_eq!(GetLastError(), ERROR_INVALID_PARAMETER);

        // The W form.
        let wdir = wide(&s.dir.display().to_string());
        let wprefix = wide("xy");
        let mut wout = [0u16; MAX_PATH as usize];
        let n = GetTempFileNameW(wdir.as_ptr(), wprefix.as_ptr(), 0, wout.as_mut_ptr());
        assert_ne!(n, 0);
        let end = wout.iter().position(|&u| u == 0).unwrap();
        let wname = String::from_utf16(&wout[..end]).unwrap();
        assert_eq!(wname, format!("{}/xy{n:X}.TMP", s.dir.display()));
        assert!(Path::new(&wname).exists());
    }
}

// ---------------------------------------------------------------------------------------------
// Bad handles (O5)
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_handles_are_invalid_handle() {
    let s = Scratch::new("handles");
    let h = open(&s.path("f"), RW, 0, CREATE_NEW);
    close(h);
    for bad in [
        h,
        null_mut(),
        INVALID_HANDLE_VALUE,
        0x7FFF_FFF0 as HANDLE,
        0x13 as HANDLE,
    ] {
        let what = format!("handle {bad:?}");
        let mut buf = [0u8; 4];
        let mut n = 0u32;
        let mut hi = 0i32;
        let mut size = 0i64;
        // SAFETY: valid buffers and out-pointers; the handle is what is tested.
        unsafe {
            let results = [
                ReadFile(bad, buf.as_mut_ptr(), 4, &mut n, null_mut()),
                WriteFile(bad, buf.as_ptr(), 4, &mut n, null_mut()),
                (SetFilePointer(bad, 0, &mut hi, FILE_BEGIN) != INVALID_SET_FILE_POINTER) as BOOL,
                SetFilePointerEx(bad, 0, null_mut(), FILE_BEGIN),
                SetEndOfFile(bad),
                (GetFileSize(bad, null_mut()) != INVALID_FILE_SIZE) as BOOL,
                GetFileSizeEx(bad, &mut size),
                FlushFileBuffers(bad),
            ];
            for (i, r) in results.into_iter().enumerate() {
                assert_eq!(r, FALSE, "{what}: call {i} succeeded");
            }
            SetLastError(UNTOUCHED);
            assert_eq!(SetEndOfFile(bad), FALSE);
            assert_eq!(GetLastError(), ERROR_INVALID_HANDLE, "{what}");
            SetLastError(UNTOUCHED);
            assert_eq!(
                ReadFile(bad, buf.as_mut_ptr(), 4, &mut n, null_mut()),
                FALSE
            );
            assert_eq!(GetLastError(), ERROR_INVALID_HANDLE, "{what}");
            SetLastError(UNTOUCHED);
            assert_eq!(GetFileSize(bad, null_mut()), INVALID_FILE_SIZE);
            assert_eq!(GetLastError(), ERROR_INVALID_HANDLE, "{what}");
        }
    }
}
