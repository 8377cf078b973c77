//! Named section objects shared between processes (`sections.md` CF8, §4, §14 and §18).
//!
//! A named section is a POSIX shared-memory object (`shm_open`, so a file in `/dev/shm`) whose
//! first page(s) hold a header written by its creator (size, protection, attributes, the
//! backing file's identity, the full name) and whose data follows at [`NamedObject::data_offset`].
//!
//! # Names
//!
//! [`parse_name_w`] / [`parse_name_a`] apply CF8: an optional `Local\` or `Global\` prefix
//! (matched case-insensitively), then the name proper (case-sensitive), in which a `\` fails
//! with ERROR_PATH_NOT_FOUND. Everything else is legal. The parsed name is a `String` in which
//! a `\` can never occur literally, so it serves as the escape of what UTF-8 cannot carry: an
//! unpaired surrogate of a W name is `\u` + 4 hex digits, a byte of an A name that is not
//! UTF-8 is `\x` + 2 hex digits. The encoding is therefore lossless and injective.
//!
//! The shared-memory name is `/virtmem-<euid>-<L|G>-<escaped>`: the escape keeps
//! `[A-Za-z0-9]`, writes `_` as `__` and every other byte as `_` + 2 lowercase hex digits, so
//! no raw text (`/`, `.`, `..`) ever reaches the file system and distinct names never share
//! an object. A name whose shared-memory name would exceed 200 bytes is replaced by `_h` + the
//! 32 hex digits of its 128-bit FNV-1a hash (`_h` cannot occur in an escape, whose `_` is
//! followed by `_` or a hex digit, so a hashed name never equals a literal one); the header
//! keeps the full name and an opener whose name differs gets ERROR_ACCESS_DENIED ("name
//! collision").
//!
//! # Trust
//!
//! Objects are created `0600` (and `fchmod`ed to it, whatever the umask) and opened with
//! `O_NOFOLLOW`; every opened object must be a regular file owned by the effective user with
//! no group or other permission bits, else ERROR_ACCESS_DENIED: a name squatted by someone
//! else never receives our data nor gives us theirs.
//!
//! # Lifetime: the lock protocol
//!
//! Every process holding a name keeps a shared `flock` on the open file description (OFD)
//! its own `shm_open` returned; the kernel drops it when the process dies, so the count
//! survives crashes. The name is removed (NS2) only by a process holding an exclusive lock on
//! the object the name points to, after it checked (`lstat` against `fstat`) that the name
//! still points to that object. Everyone who takes a lock re-checks the name afterwards.
//!
//! * **Create** builds the object under a unique temporary name
//!   (`virtmem-<euid>-T-<pid>-<seq>-<nanos>`), takes its shared hold on it at once, writes the
//!   header, sets the "initialized" flag, and only then publishes it with `link(2)` to the
//!   real name; `EEXIST` from the link is the "already exists" answer (CF8), exactly as
//!   `O_CREAT | O_EXCL` would give. A name therefore never points to a half-initialized
//!   object, and a published object always has at least one holder (its creator held the lock
//!   before the link). The temporary name is then unlinked.
//! * **Open** opens the name and tries `LOCK_EX | LOCK_NB`. Success means nobody holds it: it
//!   is stale (all its holders died, or its last holder is closing it right now — both mean
//!   the name is dead): it is unlinked (if the name still points to it) and the answer is "no
//!   such name". Failure means someone holds it: the opener takes `LOCK_SH` (polling, ≤ 2 s,
//!   to wait out a process that holds the exclusive lock just to unlink), re-checks that the
//!   name still points to the object (else it starts again), then validates the header.
//! * **Drop** converts its shared lock to `LOCK_EX | LOCK_NB`. Success: no other holder, so
//!   (if the name still points to the object) it unlinks the name; then `LOCK_UN`. Failure:
//!   others hold it; `LOCK_UN` anyway (a failed conversion has already dropped the shared lock
//!   — flock conversion is not atomic — and the explicit unlock makes sure of it).
//!
//! Races: two last holders dropping at once cannot both fail, since each removes its own lock
//! before testing for others, so whichever tests last finds none (or the first's exclusive
//! lock, and then the first unlinks). An opener racing with the last dropper either takes its
//! shared lock first (the dropper then fails its conversion and the opener is a holder of a
//! live, initialized object) or finds the name gone after the dropper's unlink (its re-check
//! fails; it starts again and sees "not found"). A dropper whose conversion succeeds only after
//! someone else unlinked the name and a new object took it finds the name pointing elsewhere
//! and leaves it alone. A crash while creating leaves at most an unheld temporary name (never
//! the real name), which [`sweep_stale`] removes; a crash after publishing leaves an unheld
//! name, which the next opener or creator removes.
//!
//! # Descriptors and fork
//!
//! [`NamedObject::data_fd`] is an `F_DUPFD_CLOEXEC` duplicate: it shares the holder's OFD and
//! so its lock, which is why `Drop` ends the hold with an explicit `LOCK_UN` (locks belong to
//! the OFD, and `LOCK_UN` releases them while duplicates stay open): duplicates kept for views
//! or `fallocate` never keep the name alive. A forked child inherits the parent's descriptor,
//! so it shares the parent's hold (the same OFD) rather than having one of its own; the hold
//! ends when the parent gives it up (or when both have closed the descriptor). So that a child
//! cannot end its parent's hold, `Drop` in a process other than the one that created or opened
//! the object only closes its descriptor.
//!
//! # Header size and errors
//!
//! The header takes one page unless the full name and the file path together need more
//! (names of up to 32767 UTF-16 units are kept whole); the data starts at the next page
//! boundary, which every opener reads from the header. Errors are [`NameError`], whose
//! variants are `crate::error::Error`'s of the same names (the OS seam cannot name the rules
//! layer). A create or open that keeps finding the name replaced under it (other processes
//! creating and closing it in a tight loop) starts again with a small random back-off, at most
//! 64 times, then fails with ERROR_ACCESS_DENIED.

// Used by the engine's named sections; until they land only the tests call it.

use crate::os::linux::sysfacts;
use rustix::fs::{AtFlags, FlockOperation, Mode, CWD};
use rustix::io::Errno;
use rustix::process::Pid;
use rustix::shm;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The directory behind `shm_open` on Linux (glibc and rustix both use it).
const SHM_DIR: &str = "/dev/shm";
/// The longest shared-memory name (with its leading `/`) used as is; longer ones are hashed.
const MAX_SHM_NAME: usize = 200;
/// The longest A name: MAX_PATH - 1 bytes.
const MAX_A_NAME: usize = 259;
/// The longest W name, in UTF-16 units (a UNICODE_STRING's limit).
const MAX_W_NAME: usize = 32767;
/// How many temporary names a create tries.
const ATTEMPTS: usize = 16;
/// How many times a create or open starts again when the name changes under it (other
/// processes creating and closing the name in a tight loop; each round backs off a little).
const NAME_ATTEMPTS: u32 = 64;
/// How long an opener waits for another process's exclusive lock to go.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// The first bytes of every header.
const MAGIC: [u8; 8] = *b"VMSECTN\0";
/// The header layout's version.
const VERSION: u32 = 1;
/// The size of the header's fixed part (the path and the name follow it).
const FIXED: usize = 80;
/// The largest header an opener accepts (a corrupt length must not make it allocate much).
const MAX_HEADER: u64 = 1 << 20;

/// Byte offsets of the header's fields (all little-endian).
mod at {
    /// `MAGIC`, 8 bytes.
    pub const MAGIC: usize = 0;
    /// The layout version, u32.
    pub const VERSION: usize = 8;
    /// 1 once the creator has written everything else, u32.
    pub const INITIALIZED: usize = 12;
    /// Where the data starts (a multiple of the page size), u64.
    pub const DATA_OFFSET: usize = 16;
    /// The section's size, u64.
    pub const SIZE: usize = 24;
    /// The page protection, u32.
    pub const PROTECT: usize = 32;
    /// The SEC_* attributes, u32.
    pub const ATTRIBUTES: usize = 36;
    /// The namespace: 0 Local, 1 Global, u32.
    pub const NAMESPACE: usize = 40;
    /// 1 if a file identity is recorded, u32.
    pub const HAS_FILE: usize = 44;
    /// The file's device, u64.
    pub const DEV: usize = 48;
    /// The file's inode, u64.
    pub const INO: usize = 56;
    /// The length of the file's path, u64 (the path follows the fixed part).
    pub const PATH_LEN: usize = 64;
    /// The length of the name, u64 (the name follows the path).
    pub const NAME_LEN: usize = 72;
}

/// Why a named-object operation failed. Each variant is the `crate::error::Error` variant of the
/// same name (same Win32 code, same message), which the engine maps it to one-to-one: the OS
/// seam may not name the rules layer's error type (`tests/layers.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameError {
    /// ERROR_FILE_NOT_FOUND (2): no section of that name.
    FileNotFound(&'static str),
    /// ERROR_PATH_NOT_FOUND (3): a `\` in a section name after its prefix.
    PathNotFound(&'static str),
    /// ERROR_ACCESS_DENIED (5): the name is squatted by someone else, collides with another
    /// name, or is contended beyond the retry bound.
    AccessDenied(&'static str),
    /// ERROR_NOT_ENOUGH_MEMORY (8): the object cannot be made that large, or the kernel
    /// refused for another reason.
    NotEnoughMemory(&'static str),
    /// ERROR_NOT_SUPPORTED (50): the host has no `/dev/shm`.
    NotSupported(&'static str),
    /// ERROR_FILENAME_EXCED_RANGE (206): a name too long.
    FilenameTooLong,
    /// ERROR_NO_SYSTEM_RESOURCES (1450): out of file descriptors.
    NoSystemResources(&'static str),
}

impl NameError {
    /// The Win32 error code `GetLastError()` reports for this error.
    pub(crate) const fn win32_code(self) -> u32 {
        match self {
            NameError::FileNotFound(_) => 2,
            NameError::PathNotFound(_) => 3,
            NameError::AccessDenied(_) => 5,
            NameError::NotEnoughMemory(_) => 8,
            NameError::NotSupported(_) => 50,
            NameError::FilenameTooLong => 206,
            NameError::NoSystemResources(_) => 1450,
        }
    }
}

/// The result of a named-object operation.
pub(crate) type Result<T> = std::result::Result<T, NameError>;

/// Which object namespace a name lives in (`Local\` is the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// `Local\` or no prefix.
    Local,
    /// `Global\`.
    Global,
}

impl Namespace {
    /// The letter of the namespace in shared-memory names.
    fn letter(self) -> char {
        match self {
            Namespace::Local => 'L',
            Namespace::Global => 'G',
        }
    }

    /// The namespace's number in the header.
    fn code(self) -> u32 {
        match self {
            Namespace::Local => 0,
            Namespace::Global => 1,
        }
    }
}

/// A parsed section name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectName {
    /// The namespace given by the prefix.
    pub ns: Namespace,
    /// The part after the prefix, UTF-8 (unpaired surrogates and non-UTF-8 bytes escaped with
    /// `\`, which cannot occur otherwise: see the module documentation).
    pub name: String,
}

/// Splits the namespace prefix (ASCII, case-insensitive) off a name of bytes or UTF-16 units.
fn split_prefix<T: Copy + Into<u32>>(name: &[T]) -> (Namespace, &[T]) {
    let starts = |p: &[u8]| {
        name.len() >= p.len()
            && name
                .iter()
                .zip(p)
                .all(|(&c, &b)| u8::try_from(c.into()).is_ok_and(|c| c.eq_ignore_ascii_case(&b)))
    };
    if starts(b"Local\\") {
        (Namespace::Local, &name[6..])
    } else if starts(b"Global\\") {
        (Namespace::Global, &name[7..])
    } else {
        (Namespace::Local, name)
    }
}

/// CF8's check of the part after the prefix: no `\`.
fn check_rest<T: Copy + Into<u32>>(rest: &[T]) -> Result<()> {
    if rest.iter().any(|&c| c.into() == u32::from(b'\\')) {
        return Err(NameError::PathNotFound(
            "a section name contains '\\' after its prefix",
        ));
    }
    Ok(())
}

/// CF8 for a W (UTF-16, no terminator in the slice) name. Ok(None) = the empty name (=
/// unnamed).
pub(crate) fn parse_name_w(name: &[u16]) -> Result<Option<ObjectName>> {
    if name.len() > MAX_W_NAME {
        return Err(NameError::FilenameTooLong);
    }
    if name.is_empty() {
        return Ok(None);
    }
    let (ns, rest) = split_prefix(name);
    check_rest(rest)?;
    let mut s = String::with_capacity(rest.len());
    for r in char::decode_utf16(rest.iter().copied()) {
        match r {
            Ok(c) => s.push(c),
            Err(e) => {
                let _ = write!(s, "\\u{:04x}", e.unpaired_surrogate());
            }
        }
    }
    Ok(Some(ObjectName { ns, name: s }))
}

/// The same for an A (bytes, UTF-8) name; longer than MAX_PATH-1 (259) bytes ->
/// NameError::FilenameTooLong.
pub(crate) fn parse_name_a(name: &[u8]) -> Result<Option<ObjectName>> {
    if name.len() > MAX_A_NAME {
        return Err(NameError::FilenameTooLong);
    }
    if name.is_empty() {
        return Ok(None);
    }
    let (ns, rest) = split_prefix(name);
    check_rest(rest)?;
    let mut s = String::with_capacity(rest.len());
    for chunk in rest.utf8_chunks() {
        s.push_str(chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    Ok(Some(ObjectName { ns, name: s }))
}

/// Appends the file-system-safe escape of `name` to `out`: `[A-Za-z0-9]` as is, `_` as `__`,
/// every other byte as `_` and two lowercase hex digits.
fn escape(name: &str, out: &mut String) {
    for &b in name.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => out.push(char::from(b)),
            b'_' => out.push_str("__"),
            _ => {
                let _ = write!(out, "_{b:02x}");
            }
        }
    }
}

/// The 128-bit FNV-1a hash of `bytes` (fixed constants: the same in every build).
fn fnv1a128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u128::from(b)).wrapping_mul(PRIME))
}

/// The effective user id.
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// `/virtmem-<euid>-`: how every shared-memory name of this user starts (with its `/`).
fn user_prefix() -> String {
    format!("/virtmem-{}-", euid())
}

/// The shared-memory name (with its leading `/`) of `name`.
fn shm_name(name: &ObjectName) -> String {
    let head = format!("{}{}-", user_prefix(), name.ns.letter());
    let mut s = head.clone();
    escape(&name.name, &mut s);
    if s.len() > MAX_SHM_NAME {
        s = format!("{head}_h{:032x}", fnv1a128(name.name.as_bytes()));
    }
    s
}

/// The path of a shared-memory object in the file system.
fn shm_path(shm: &str) -> String {
    format!("{SHM_DIR}{shm}")
}

/// What the creator records for openers (stored in the object's header page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SharedHeader {
    /// The section's size in bytes.
    pub size: u64,
    /// Page protection at creation.
    pub protect: u32,
    /// SEC_* attributes.
    pub attributes: u32,
    /// For a file-backed section: the file's absolute path and identity, so another process
    /// can open the same file.
    pub file: Option<FileIdentity>,
}

/// A file's path and identity, as recorded for a file-backed named section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    /// The file's absolute path.
    pub path: PathBuf,
    /// The device of the file (`st_dev`).
    pub dev: u64,
    /// The inode of the file (`st_ino`).
    pub ino: u64,
}

/// Rounds `n` up to a multiple of `page` (a power of two).
fn round_up(n: u64, page: u64) -> Option<u64> {
    Some(n.checked_add(page - 1)? & !(page - 1))
}

/// The page size, as a `u64`.
fn page() -> u64 {
    sysfacts::page_size() as u64
}

/// The header bytes (with the "initialized" flag still 0) and where the data starts.
fn encode_header(h: &SharedHeader, name: &ObjectName) -> Result<(Vec<u8>, u64)> {
    let path = h
        .file
        .as_ref()
        .map_or(&[][..], |f| f.path.as_os_str().as_bytes());
    let name_bytes = name.name.as_bytes();
    let len = FIXED + path.len() + name_bytes.len();
    let data_offset = round_up(len as u64, page())
        .filter(|&n| n <= MAX_HEADER)
        .ok_or(NameError::FilenameTooLong)?;
    let mut b = vec![0u8; len];
    let put32 = |b: &mut [u8], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put64 = |b: &mut [u8], at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    b[at::MAGIC..at::MAGIC + 8].copy_from_slice(&MAGIC);
    put32(&mut b, at::VERSION, VERSION);
    put64(&mut b, at::DATA_OFFSET, data_offset);
    put64(&mut b, at::SIZE, h.size);
    put32(&mut b, at::PROTECT, h.protect);
    put32(&mut b, at::ATTRIBUTES, h.attributes);
    put32(&mut b, at::NAMESPACE, name.ns.code());
    if let Some(f) = &h.file {
        put32(&mut b, at::HAS_FILE, 1);
        put64(&mut b, at::DEV, f.dev);
        put64(&mut b, at::INO, f.ino);
    }
    put64(&mut b, at::PATH_LEN, path.len() as u64);
    put64(&mut b, at::NAME_LEN, name_bytes.len() as u64);
    b[FIXED..FIXED + path.len()].copy_from_slice(path);
    b[FIXED + path.len()..].copy_from_slice(name_bytes);
    Ok((b, data_offset))
}

/// The size the object must have: the header, then (pagefile-backed) the data.
fn object_size(h: &SharedHeader, data_offset: u64) -> Option<u64> {
    let data = if h.file.is_none() { h.size } else { 0 };
    data_offset
        .checked_add(data)
        .filter(|&n| n <= i64::MAX as u64)
}

/// The refusal for an object that is not a well-formed header of ours.
const NOT_OURS: NameError =
    NameError::AccessDenied("the shared-memory object is not a virtmem section");

/// Reads and checks the header of the object open on `fd`, whose name must be `name`.
/// Returns the header and where the data starts.
fn read_header(fd: &OwnedFd, name: &ObjectName) -> Result<(SharedHeader, u64)> {
    let st = rustix::fs::fstat(fd).map_err(|e| os_error(e, "fstat of a section object"))?;
    let mut fixed = [0u8; FIXED];
    read_exact(fd, &mut fixed, 0)?;
    let get32 = |at: usize| u32::from_le_bytes(fixed[at..at + 4].try_into().unwrap());
    let get64 = |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().unwrap());
    if fixed[at::MAGIC..at::MAGIC + 8] != MAGIC || get32(at::VERSION) != VERSION {
        return Err(NOT_OURS);
    }
    if get32(at::INITIALIZED) != 1 {
        // Never published so by virtmem (an object is linked under its name only after its
        // creator set the flag).
        return Err(NOT_OURS);
    }
    let data_offset = get64(at::DATA_OFFSET);
    let (path_len, name_len) = (get64(at::PATH_LEN), get64(at::NAME_LEN));
    let len = (FIXED as u64)
        .checked_add(path_len)
        .and_then(|n| n.checked_add(name_len));
    let sane = len.is_some_and(|len| len <= data_offset)
        && data_offset <= MAX_HEADER
        && data_offset % page() == 0;
    if !sane {
        return Err(NOT_OURS);
    }
    let mut var = vec![0u8; (path_len + name_len) as usize];
    read_exact(fd, &mut var, FIXED as u64)?;
    let (path, stored) = var.split_at(path_len as usize);
    let ns = match get32(at::NAMESPACE) {
        0 => Namespace::Local,
        1 => Namespace::Global,
        _ => return Err(NOT_OURS),
    };
    if ns != name.ns || stored != name.name.as_bytes() {
        return Err(NameError::AccessDenied("name collision"));
    }
    let file = match get32(at::HAS_FILE) {
        0 => None,
        1 => Some(FileIdentity {
            path: PathBuf::from(OsStr::from_bytes(path)),
            dev: get64(at::DEV),
            ino: get64(at::INO),
        }),
        _ => return Err(NOT_OURS),
    };
    let header = SharedHeader {
        size: get64(at::SIZE),
        protect: get32(at::PROTECT),
        attributes: get32(at::ATTRIBUTES),
        file,
    };
    let big_enough =
        object_size(&header, data_offset).is_some_and(|n| n <= st.st_size.max(0) as u64);
    if !big_enough {
        return Err(NOT_OURS);
    }
    Ok((header, data_offset))
}

/// `pread` until `buf` is full; an early end of file means a header cut short.
fn read_exact(fd: &OwnedFd, buf: &mut [u8], mut off: u64) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(fd, &mut buf[done..], off) {
            Ok(0) => return Err(NOT_OURS),
            Ok(n) => {
                done += n;
                off += n as u64;
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(os_error(e, "reading a section header")),
        }
    }
    Ok(())
}

/// `pwrite` all of `buf` at `off`.
fn write_all(fd: &OwnedFd, buf: &[u8], mut off: u64) -> rustix::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pwrite(fd, &buf[done..], off) {
            Ok(0) => return Err(Errno::NOSPC),
            Ok(n) => {
                done += n;
                off += n as u64;
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The Win32 error for a failed system call on a shared-memory object.
fn os_error(e: Errno, what: &'static str) -> NameError {
    match e {
        Errno::ACCESS | Errno::PERM | Errno::LOOP => NameError::AccessDenied(what),
        Errno::NOENT => NameError::FileNotFound(what),
        Errno::MFILE | Errno::NFILE => NameError::NoSystemResources("too many open files"),
        Errno::NAMETOOLONG => NameError::FilenameTooLong,
        _ => NameError::NotEnoughMemory(what),
    }
}

/// `shm_open` with `O_NOFOLLOW` (and, as always, `O_CLOEXEC`), mode 0600 when creating.
fn open_shm(shm: &str, flags: shm::OFlags) -> rustix::io::Result<OwnedFd> {
    let nofollow = shm::OFlags::from_bits_retain(rustix::fs::OFlags::NOFOLLOW.bits());
    shm::open(shm, flags | nofollow, Mode::RUSR | Mode::WUSR)
}

/// Whether the object open on `fd` is ours alone: a regular file owned by the effective user,
/// with no permission for group or others. Anything else is someone squatting the name.
fn check_owner(fd: &OwnedFd) -> Result<()> {
    let st = rustix::fs::fstat(fd).map_err(|e| os_error(e, "fstat of a section object"))?;
    let regular =
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
    if !regular || st.st_uid != euid() || st.st_mode & 0o077 != 0 {
        return Err(NameError::AccessDenied(
            "the section's shared-memory object belongs to someone else",
        ));
    }
    Ok(())
}

/// `flock(op)` where `op` is non-blocking: Ok(false) if another lock is in the way.
fn try_lock(fd: &OwnedFd, op: FlockOperation) -> rustix::io::Result<bool> {
    loop {
        match rustix::fs::flock(fd, op) {
            Ok(()) => return Ok(true),
            Err(Errno::WOULDBLOCK) => return Ok(false),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Takes a shared lock, waiting (polling, at most `LOCK_WAIT`) for an exclusive holder to go.
fn lock_shared(fd: &OwnedFd) -> Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        match try_lock(fd, FlockOperation::NonBlockingLockShared) {
            Ok(true) => return Ok(()),
            Ok(false) if start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(10));
            }
            Ok(false) => {
                return Err(NameError::AccessDenied(
                    "another process keeps the section's name locked",
                ))
            }
            Err(e) => return Err(os_error(e, "flock of a section object")),
        }
    }
}

/// Releases whatever lock this process's OFD holds on the object.
fn unlock(fd: &OwnedFd) {
    let _ = rustix::fs::flock(fd, FlockOperation::Unlock);
}

/// Whether the name `shm` still refers to the object open on `fd`.
fn same_object(shm: &str, fd: &OwnedFd) -> bool {
    let Ok(mine) = rustix::fs::fstat(fd) else {
        return false;
    };
    rustix::fs::statat(CWD, shm_path(shm), AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_dev == mine.st_dev && st.st_ino == mine.st_ino)
}

/// Removes the name `shm` if nobody else holds the object open on `fd` (which may hold our
/// shared lock, or none), then releases our lock: the end of a hold, and the stale check.
/// Returns whether the name was removed.
fn release(fd: &OwnedFd, shm: &str) -> bool {
    let mut removed = false;
    if try_lock(fd, FlockOperation::NonBlockingLockExclusive) == Ok(true) && same_object(shm, fd) {
        // Nobody else can take a lock now, so nobody else can remove or replace the name
        // between the check and the unlink.
        removed = shm::unlink(shm).is_ok();
    }
    unlock(fd);
    removed
}

/// One process's hold on a named object (at most one per name per process: the caller keeps a
/// registry).
#[derive(Debug)]
pub(crate) struct NamedObject {
    /// The descriptor `shm_open` returned in this process: its OFD carries the shared lock.
    fd: OwnedFd,
    /// The shared-memory name (with its `/`).
    shm: String,
    /// The header recorded by the creator.
    header: SharedHeader,
    /// Where the data starts.
    data_offset: u64,
    /// The process that took the hold (a forked child's drop must not end it).
    pid: Pid,
}

/// What one look at an existing name found.
enum Probe {
    /// A live object, now held.
    Live(NamedObject),
    /// No object of that name (or only a stale one, now removed).
    Absent,
    /// The name changed under us: look again.
    Retry,
}

/// What one attempt to create found.
enum Made {
    /// The object is new and published under its name.
    Created(NamedObject),
    /// Another object took the name first.
    Exists,
}

/// Looks at the object of name `shm`; takes a hold on it if it is live.
fn probe(shm: &str, name: &ObjectName) -> Result<Probe> {
    let fd = match open_shm(shm, shm::OFlags::RDWR) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Probe::Absent),
        Err(e) => return Err(os_error(e, "opening a section's shared-memory object")),
    };
    check_owner(&fd)?;
    let alone = try_lock(&fd, FlockOperation::NonBlockingLockExclusive)
        .map_err(|e| os_error(e, "flock of a section object"))?;
    if alone {
        // Nobody holds it: the name is dead (its holders crashed, or its last holder is
        // closing it now). Remove it if it is still this object's.
        let same = same_object(shm, &fd);
        if same {
            let _ = shm::unlink(shm);
        }
        unlock(&fd);
        return Ok(if same { Probe::Absent } else { Probe::Retry });
    }
    lock_shared(&fd)?;
    if !same_object(shm, &fd) {
        // Removed (and maybe replaced) while we waited.
        unlock(&fd);
        return Ok(Probe::Retry);
    }
    match read_header(&fd, name) {
        Ok((header, data_offset)) => Ok(Probe::Live(NamedObject {
            fd,
            shm: shm.to_owned(),
            header,
            data_offset,
            pid: rustix::process::getpid(),
        })),
        Err(e) => {
            // We were a holder for a moment: give the hold up as a drop would.
            release(&fd, shm);
            Err(e)
        }
    }
}

/// Before round `round` of a create or open: nothing for the first, then a pause of a random
/// length growing with the round (at most 1 ms), so that processes churning one name do not
/// stay in step.
fn backoff(round: u32) {
    match round {
        0 => {}
        1 => std::thread::yield_now(),
        _ => {
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
                ^ rustix::process::getpid().as_raw_nonzero().get() as u32;
            let span = 1u32 << round.min(10);
            std::thread::sleep(Duration::from_micros(u64::from(seed % span)));
        }
    }
}

/// Creates a temporary object (a unique name of this user), with our shared lock on it.
fn make_temp() -> Result<(OwnedFd, String)> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    for _ in 0..ATTEMPTS {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = format!("{}T-{pid}-{seq}-{nanos:x}", user_prefix());
        let flags = shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR;
        let fd = match open_shm(&tmp, flags) {
            Ok(fd) => fd,
            Err(Errno::EXIST) => continue,
            Err(Errno::NOENT) => {
                return Err(NameError::NotSupported("named sections need /dev/shm"));
            }
            Err(e) => return Err(os_error(e, "creating a section's shared-memory object")),
        };
        // A sweeper may have seen it unheld and taken it (it then removes it): start again.
        if !try_lock(&fd, FlockOperation::NonBlockingLockShared).unwrap_or(false)
            || !same_object(&tmp, &fd)
        {
            continue;
        }
        if let Err(e) = rustix::fs::fchmod(&fd, Mode::RUSR | Mode::WUSR) {
            let _ = shm::unlink(&tmp);
            return Err(os_error(e, "fchmod of a section object"));
        }
        return Ok((fd, tmp));
    }
    Err(NameError::AccessDenied(
        "no temporary shared-memory name could be created",
    ))
}

/// Creates the object and publishes it under `shm`, unless another one has the name.
fn create(shm: &str, name: &ObjectName, header: &SharedHeader) -> Result<Made> {
    let (image, data_offset) = encode_header(header, name)?;
    let total = object_size(header, data_offset)
        .ok_or(NameError::NotEnoughMemory("the section is too large"))?;
    let (fd, tmp) = make_temp()?;
    let built = (|| {
        rustix::fs::ftruncate(&fd, total).map_err(|e| match e {
            Errno::FBIG | Errno::INVAL => NameError::NotEnoughMemory("the section is too large"),
            e => os_error(e, "sizing a section object"),
        })?;
        write_all(&fd, &image, 0).map_err(|e| os_error(e, "writing a section header"))?;
        write_all(&fd, &1u32.to_le_bytes(), at::INITIALIZED as u64)
            .map_err(|e| os_error(e, "writing a section header"))?;
        // Publish: from here the name points to a complete object we hold.
        match rustix::fs::link(shm_path(&tmp), shm_path(shm)) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(os_error(e, "naming a section object")),
        }
    })();
    // We hold the temporary object, so the temporary name is still ours to remove.
    let _ = shm::unlink(&tmp);
    match built? {
        true => Ok(Made::Created(NamedObject {
            fd,
            shm: shm.to_owned(),
            header: header.clone(),
            data_offset,
            pid: rustix::process::getpid(),
        })),
        false => Ok(Made::Exists),
    }
}

impl NamedObject {
    /// Creates the object with `header` (returns (obj, true)) or, if a live object of that name
    /// exists, opens it (returns (obj, false); its header is the existing one's — the caller
    /// then uses `header()` and ignores what it asked for).
    /// A pagefile-backed object's data (`header.size` bytes, sparse, zero) follows the header:
    /// the object's size is data_offset()+size.
    pub(crate) fn create_or_open(
        name: &ObjectName,
        header: &SharedHeader,
    ) -> Result<(NamedObject, bool)> {
        // The request must be valid whether or not the name exists.
        let (_, data_offset) = encode_header(header, name)?;
        object_size(header, data_offset)
            .ok_or(NameError::NotEnoughMemory("the section is too large"))?;
        let shm = shm_name(name);
        for round in 0..NAME_ATTEMPTS {
            backoff(round);
            match probe(&shm, name)? {
                Probe::Live(obj) => return Ok((obj, false)),
                Probe::Retry => continue,
                Probe::Absent => {}
            }
            match create(&shm, name, header)? {
                Made::Created(obj) => return Ok((obj, true)),
                Made::Exists => continue,
            }
        }
        Err(NameError::AccessDenied("the section's name keeps changing"))
    }

    /// Opens an existing live object; none -> NameError::FileNotFound("no section of that name").
    pub(crate) fn open(name: &ObjectName) -> Result<NamedObject> {
        let shm = shm_name(name);
        for round in 0..NAME_ATTEMPTS {
            backoff(round);
            match probe(&shm, name)? {
                Probe::Live(obj) => return Ok(obj),
                Probe::Absent => return Err(NameError::FileNotFound("no section of that name")),
                Probe::Retry => continue,
            }
        }
        Err(NameError::AccessDenied("the section's name keeps changing"))
    }

    /// The header recorded by the creator.
    pub(crate) fn header(&self) -> &SharedHeader {
        &self.header
    }

    /// A new descriptor (F_DUPFD_CLOEXEC) of the object, for mapping its data and for
    /// fallocate / lseek(SEEK_DATA). Holding it does not keep this process's hold on the name:
    /// it shares the holder's OFD, and `Drop` releases that OFD's lock explicitly.
    pub(crate) fn data_fd(&self) -> Result<OwnedFd> {
        rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)
            .map_err(|e| os_error(e, "duplicating a section descriptor"))
    }

    /// Where the data starts in the object: the header page (more pages only for a name and
    /// file path together longer than a page).
    pub(crate) fn data_offset(&self) -> u64 {
        self.data_offset
    }
}

impl Drop for NamedObject {
    /// Gives up this process's hold; the last holder removes the name. In a forked child
    /// (which shares its parent's OFD, so its hold) it only closes the descriptor.
    fn drop(&mut self) {
        if rustix::process::getpid() == self.pid {
            release(&self.fd, &self.shm);
        }
    }
}

/// Whether this process has swept already.
static SWEPT: AtomicBool = AtomicBool::new(false);

/// Removes names left behind by crashed processes of this user (best effort; called once per
/// process by the engine before its first named create/open — idempotent and cheap to call
/// repeatedly: the scan happens once per process).
pub(crate) fn sweep_stale() {
    if !SWEPT.swap(true, Ordering::AcqRel) {
        sweep_now();
    }
}

/// The scan of `sweep_stale`: every unheld object of this user's names (and temporary names)
/// is removed. Returns how many.
fn sweep_now() -> usize {
    let prefix = user_prefix();
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else {
        return 0;
    };
    let mut removed = 0;
    for entry in dir.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let shm = format!("/{file}");
        if !shm.starts_with(&prefix) {
            continue;
        }
        let Ok(fd) = open_shm(&shm, shm::OFlags::RDONLY) else {
            continue;
        };
        // Never touch another user's object, even one squatting our prefix.
        let Ok(st) = rustix::fs::fstat(&fd) else {
            continue;
        };
        if st.st_uid != euid() {
            continue;
        }
        if release(&fd, &shm) {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    /// Held by the tests that leave stale names on purpose and by the one that sweeps, so the
    /// sweep does not remove another test's stale name before it looks.
    static STALE: Mutex<()> = Mutex::new(());

    /// A name no other test (nor another run) uses.
    fn unique(tag: &str) -> ObjectName {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        ObjectName {
            ns: Namespace::Local,
            name: format!("vmtest-{tag}-{pid}-{n}"),
        }
    }

    /// A pagefile-backed header of `size` bytes.
    fn hdr(size: u64) -> SharedHeader {
        SharedHeader {
            size,
            protect: 0x04,
            attributes: 0x0800_0000,
            file: None,
        }
    }

    /// UTF-16 of `s`.
    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    /// `(ns, name)` of a parse that must succeed with a name.
    fn parsed(r: Result<Option<ObjectName>>) -> (Namespace, String) {
        let n = r.expect("parse").expect("a name");
        (n.ns, n.name)
    }

    /// Whether a shared-memory object of that name exists.
    fn exists(shm: &str) -> bool {
        rustix::fs::statat(CWD, shm_path(shm), AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Forks; the child runs `body` (its result is the exit code; a panic is 101) and
    /// `_exit`s. Returns the child's exit code (waits 20 s at most).
    fn in_child(body: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only runs `body` (system calls, allocation) and `_exit`s, never
        // returning into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(r.unwrap_or(101)) };
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut status = 0;
        loop {
            // SAFETY: polls our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            assert_eq!(r, 0, "waitpid");
            if Instant::now() > deadline {
                // SAFETY: kills and reaps our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                panic!("the child hung");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(libc::WIFEXITED(status), "the child died: {status:#x}");
        libc::WEXITSTATUS(status)
    }

    /// Prefixes: `Local\` and `Global\` in any case; none means Local; the rest keeps its case.
    #[test]
    fn prefixes() {
        for (s, ns, rest) in [
            ("foo", Namespace::Local, "foo"),
            ("Local\\foo", Namespace::Local, "foo"),
            ("LOCAL\\Foo", Namespace::Local, "Foo"),
            ("Global\\foo", Namespace::Global, "foo"),
            ("gLoBaL\\Foo", Namespace::Global, "Foo"),
            ("Local\\", Namespace::Local, ""),
            ("Global\\", Namespace::Global, ""),
            ("Local", Namespace::Local, "Local"),
            ("Globalfoo", Namespace::Local, "Globalfoo"),
        ] {
            assert_eq!(
                parsed(parse_name_a(s.as_bytes())),
                (ns, rest.into()),
                "A {s}"
            );
            assert_eq!(parsed(parse_name_w(&w(s))), (ns, rest.into()), "W {s}");
        }
        assert_ne!(
            parse_name_a(b"Local\\Foo").unwrap(),
            parse_name_a(b"Local\\foo").unwrap()
        );
        // A non-ASCII unit that truncates to an ASCII letter does not match the prefix (so the
        // `\` is inside the name).
        let mut tricky = w("Local\\x");
        tricky[0] = 0x14c; // 'L' + 0x100
        assert_eq!(parse_name_w(&tricky).unwrap_err().win32_code(), 3);
    }

    /// A `\` after the prefix (or with no prefix) is ERROR_PATH_NOT_FOUND (3).
    #[test]
    fn backslash_is_path_not_found() {
        for s in [
            "a\\b",
            "Local\\a\\b",
            "Global\\Local\\x",
            "Session\\1\\x",
            "\\",
            "x\\",
        ] {
            let a = parse_name_a(s.as_bytes()).unwrap_err();
            let u = parse_name_w(&w(s)).unwrap_err();
            assert_eq!(a.win32_code(), 3, "A {s}");
            assert_eq!(u.win32_code(), 3, "W {s}");
        }
    }

    /// The empty name is "unnamed"; lengths past the limits are ERROR_FILENAME_EXCED_RANGE.
    #[test]
    fn empty_and_lengths() {
        assert_eq!(parse_name_a(b"").unwrap(), None);
        assert_eq!(parse_name_w(&[]).unwrap(), None);
        assert!(parse_name_a(&[b'a'; 259]).unwrap().is_some());
        assert_eq!(parse_name_a(&[b'a'; 260]).unwrap_err().win32_code(), 206);
        assert!(parse_name_w(&vec![u16::from(b'a'); 32767])
            .unwrap()
            .is_some());
        assert_eq!(
            parse_name_w(&vec![u16::from(b'a'); 32768])
                .unwrap_err()
                .win32_code(),
            206
        );
        // The length check comes first.
        assert_eq!(parse_name_a(&[b'\\'; 300]).unwrap_err().win32_code(), 206);
    }

    /// Unpaired surrogates and non-UTF-8 bytes are kept, distinguishably.
    #[test]
    fn lone_surrogates_and_bad_bytes() {
        let a = parsed(parse_name_w(&[0x61, 0xd800, 0x62])).1;
        let b = parsed(parse_name_w(&[0x61, 0xdc00, 0x62])).1;
        let pair = parsed(parse_name_w(&[0xd83d, 0xde00])).1;
        assert_eq!(pair, "\u{1f600}");
        assert_ne!(a, b);
        assert_eq!(a, "a\\ud800b");
        let bad = parsed(parse_name_a(&[0x61, 0xff, 0x62])).1;
        assert_eq!(bad, "a\\xffb");
        // A W name and an A name of the same text name the same object.
        assert_eq!(
            parse_name_a("Local\\é/x".as_bytes()).unwrap(),
            parse_name_w(&w("Local\\é/x")).unwrap()
        );
        // Text that looks like an escape cannot be written: it needs a '\'.
        assert!(parse_name_a(b"a\\ud800b").is_err());
    }

    /// `/`, `.` and `..` stay inside the user's namespace in /dev/shm.
    #[test]
    fn slashes_and_dots_stay_inside() {
        for s in ["/", ".", "..", "../../etc/passwd", "a/b", "/dev/shm/x", ""] {
            let n = ObjectName {
                ns: Namespace::Global,
                name: s.into(),
            };
            let shm = shm_name(&n);
            let head = format!("/virtmem-{}-G-", euid());
            assert!(shm.starts_with(&head), "{shm}");
            let rest = &shm[head.len()..];
            assert!(
                rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{shm}"
            );
        }
        let n = ObjectName {
            ns: Namespace::Local,
            name: "../x".into(),
        };
        assert_eq!(shm_name(&n), format!("/virtmem-{}-L-_2e_2e_2fx", euid()));
    }

    /// Distinct names give distinct shared-memory names (a sample, including the escape's own
    /// characters and the namespaces).
    #[test]
    fn escaping_is_injective() {
        let sample = [
            "",
            "_",
            "__",
            "_5f",
            "_5F",
            "a",
            "A",
            "a_b",
            "a__b",
            "_2e",
            ".",
            "..",
            "/",
            "é",
            "\u{e9}\u{301}",
            "e\u{301}",
            "\\u0041",
            "\\x41",
            "A_",
            "_A",
            "h0",
            "_h0",
            "%",
            "\0",
            " ",
            "  ",
            "a b",
            "ab",
        ];
        let mut seen = std::collections::HashMap::new();
        for s in sample {
            for ns in [Namespace::Local, Namespace::Global] {
                let n = ObjectName { ns, name: s.into() };
                if let Some(prev) = seen.insert(shm_name(&n), n.clone()) {
                    panic!("{prev:?} and {n:?} share {}", shm_name(&n));
                }
            }
        }
    }

    /// Long names are hashed into a short, fixed-form name that no literal name produces; the
    /// hash is FNV-1a 128 (a known value).
    #[test]
    fn long_names_are_hashed() {
        assert_eq!(fnv1a128(b""), 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d);
        assert_eq!(fnv1a128(b"a"), 0xd228_cb69_6f1a_8caf_7891_2b70_4e4a_8964);
        let long = ObjectName {
            ns: Namespace::Local,
            name: "é".repeat(100),
        };
        let other = ObjectName {
            ns: Namespace::Local,
            name: "é".repeat(101),
        };
        let (a, b) = (shm_name(&long), shm_name(&other));
        assert!(a.len() <= MAX_SHM_NAME && b.len() <= MAX_SHM_NAME);
        assert_ne!(a, b);
        let head = format!("/virtmem-{}-L-_h", euid());
        assert!(a.starts_with(&head) && a.len() == head.len() + 32, "{a}");
        // The longest literal form still fits.
        let fits = ObjectName {
            ns: Namespace::Local,
            name: "a".repeat(MAX_SHM_NAME - head.len() + 2),
        };
        assert_eq!(shm_name(&fits).len(), MAX_SHM_NAME);
        let over = ObjectName {
            ns: Namespace::Local,
            name: "a".repeat(MAX_SHM_NAME - head.len() + 3),
        };
        assert!(shm_name(&over).starts_with(&head));
    }

    /// Create, create again (opens, keeps the first header), data shared, drop both: the name
    /// is gone.
    #[test]
    fn create_open_drop() {
        let name = unique("life");
        let shm = shm_name(&name);
        let (a, created) = NamedObject::create_or_open(&name, &hdr(0x3000)).unwrap();
        assert!(created);
        assert_eq!(a.data_offset(), page());
        assert_eq!(a.header(), &hdr(0x3000));
        let st = rustix::fs::fstat(&a.fd).unwrap();
        assert_eq!(st.st_size as u64, a.data_offset() + 0x3000);
        let (b, created) = NamedObject::create_or_open(&name, &hdr(0x9000)).unwrap();
        assert!(!created);
        assert_eq!(b.header(), &hdr(0x3000));
        let c = NamedObject::open(&name).unwrap();
        assert_eq!(c.header(), &hdr(0x3000));
        // The data is shared.
        let fd = a.data_fd().unwrap();
        write_all(&fd, b"shared", a.data_offset() + 5).unwrap();
        let mut buf = [0u8; 6];
        read_exact(&c.data_fd().unwrap(), &mut buf, c.data_offset() + 5).unwrap();
        assert_eq!(&buf, b"shared");
        drop(a);
        drop(b);
        assert!(exists(&shm));
        drop(c);
        // `fd` (a data descriptor) is still open: it does not keep the name.
        assert!(!exists(&shm));
        assert_eq!(
            NamedObject::open(&name).unwrap_err(),
            NameError::FileNotFound("no section of that name")
        );
        drop(fd);
        // The name can be created anew.
        let (d, created) = NamedObject::create_or_open(&name, &hdr(0x1000)).unwrap();
        assert!(created);
        assert_eq!(d.header(), &hdr(0x1000));
    }

    /// A file-backed header (path and identity) and a long name round-trip; the header then
    /// takes more than a page and the data offset follows it.
    #[test]
    fn file_identity_and_long_name_round_trip() {
        let mut name = unique("file");
        name.name.push_str(&"ü".repeat(2000));
        let h = SharedHeader {
            size: 36,
            protect: 0x02,
            attributes: 0x0080_0000,
            file: Some(FileIdentity {
                path: PathBuf::from("/tmp/some dir/ä file"),
                dev: 0x803,
                ino: 123_456_789,
            }),
        };
        let (a, created) = NamedObject::create_or_open(&name, &h).unwrap();
        assert!(created);
        assert_eq!(a.data_offset() % page(), 0);
        assert!(a.data_offset() >= 4000 + FIXED as u64);
        let b = NamedObject::open(&name).unwrap();
        assert_eq!(b.header(), &h);
        assert_eq!(b.data_offset(), a.data_offset());
        // A file-backed object holds only its header.
        let st = rustix::fs::fstat(&a.fd).unwrap();
        assert_eq!(st.st_size as u64, a.data_offset());
    }

    /// Opening an unknown name is ERROR_FILE_NOT_FOUND (2).
    #[test]
    fn open_of_nothing_is_not_found() {
        let e = NamedObject::open(&unique("none")).unwrap_err();
        assert_eq!(e.win32_code(), 2);
    }

    /// A holder that vanished without dropping (simulated in-process: the lock given up, the
    /// object forgotten) leaves a stale name: open says not found and removes it.
    #[test]
    fn a_stale_name_is_not_found_and_removed() {
        let _serial = STALE.lock().unwrap_or_else(|e| e.into_inner());
        let name = unique("stale");
        let shm = shm_name(&name);
        let (a, _) = NamedObject::create_or_open(&name, &hdr(0x1000)).unwrap();
        unlock(&a.fd);
        std::mem::forget(a);
        assert!(exists(&shm));
        assert_eq!(NamedObject::open(&name).unwrap_err().win32_code(), 2);
        assert!(!exists(&shm));
    }

    /// A process that created a name and died without closing it: the next create replaces it
    /// (a new object, created = true), and the sweep removes such leftovers.
    #[test]
    fn a_crashed_creator_is_replaced_and_swept() {
        let _serial = STALE.lock().unwrap_or_else(|e| e.into_inner());
        let name = unique("crash");
        let shm = shm_name(&name);
        let child = {
            let name = name.clone();
            move || {
                let Ok((obj, true)) = NamedObject::create_or_open(&name, &hdr(0x2000)) else {
                    return 1;
                };
                // Dies holding it.
                std::mem::forget(obj);
                0
            }
        };
        assert_eq!(in_child(child.clone()), 0);
        assert!(exists(&shm));
        let (obj, created) = NamedObject::create_or_open(&name, &hdr(0x5000)).unwrap();
        assert!(created, "the stale object was replaced");
        assert_eq!(obj.header(), &hdr(0x5000));
        drop(obj);
        assert!(!exists(&shm));

        assert_eq!(in_child(child), 0);
        assert!(exists(&shm));
        // Live objects survive the sweep.
        let live = unique("live");
        let (keep, _) = NamedObject::create_or_open(&live, &hdr(0x1000)).unwrap();
        assert!(sweep_now() >= 1);
        assert!(!exists(&shm), "the sweep removed the stale name");
        assert!(exists(&shm_name(&live)));
        drop(keep);
        // sweep_stale scans once per process and is cheap after.
        sweep_stale();
        sweep_stale();
        assert!(SWEPT.load(Ordering::Relaxed));
    }

    /// A second process sees the same object and its data; created/exists answers are right
    /// across processes; the name lives while any process holds it.
    #[test]
    fn two_processes_share_one_object() {
        let name = unique("two");
        let shm = shm_name(&name);
        let (a, created) = NamedObject::create_or_open(&name, &hdr(0x4000)).unwrap();
        assert!(created);
        write_all(&a.data_fd().unwrap(), b"parent", a.data_offset()).unwrap();
        let child = {
            let name = name.clone();
            move || {
                let Ok((b, false)) = NamedObject::create_or_open(&name, &hdr(0x1000)) else {
                    return 1;
                };
                if b.header() != &hdr(0x4000) {
                    return 2;
                }
                let mut buf = [0u8; 6];
                if read_exact(&b.data_fd().unwrap(), &mut buf, b.data_offset()).is_err()
                    || &buf != b"parent"
                {
                    return 3;
                }
                let fd = b.data_fd().unwrap();
                if write_all(&fd, b"child!", b.data_offset()).is_err() {
                    return 4;
                }
                0
            }
        };
        assert_eq!(in_child(child), 0);
        let mut buf = [0u8; 6];
        read_exact(&a.fd, &mut buf, a.data_offset()).unwrap();
        assert_eq!(&buf, b"child!");
        // The child's drop did not remove the name: we hold it.
        assert!(exists(&shm));
        drop(a);
        assert!(!exists(&shm));
    }

    /// A forked child shares its parent's hold (the same OFD); its drop does not end it.
    #[test]
    fn a_forked_child_does_not_end_the_parents_hold() {
        let name = unique("fork");
        let shm = shm_name(&name);
        let (a, _) = NamedObject::create_or_open(&name, &hdr(0x1000)).unwrap();
        let parent = &a;
        let code = in_child(|| {
            // SAFETY: a bitwise copy in the child's own memory; the original is never dropped
            // in the child (it leaves with `_exit`), so the copy is the only one dropped here.
            let copy = unsafe { std::ptr::read(parent) };
            drop(copy);
            0
        });
        assert_eq!(code, 0);
        assert!(exists(&shm));
        // Still held: an opener finds it live, not stale.
        let b = NamedObject::open(&name).expect("the parent's hold survived");
        drop(b);
        drop(a);
        assert!(!exists(&shm));
    }

    /// Objects are 0600 whatever the umask.
    #[test]
    fn mode_is_0600_whatever_the_umask() {
        for mask in [0o000, 0o777, 0o022] {
            let name = unique("mode");
            let code = in_child(move || {
                rustix::process::umask(Mode::from_bits_retain(mask));
                let Ok((obj, true)) = NamedObject::create_or_open(&name, &hdr(0x1000)) else {
                    return 1;
                };
                let Ok(st) = rustix::fs::fstat(&obj.fd) else {
                    return 2;
                };
                if st.st_mode & 0o7777 != 0o600 {
                    return 3;
                }
                0
            });
            assert_eq!(code, 0, "umask {mask:o}");
        }
    }

    /// Someone else's object under our derived name (here: our own user but mode 0644, which
    /// we never create) is refused with ERROR_ACCESS_DENIED (5), by open and by create.
    #[test]
    fn a_squatter_is_access_denied() {
        let name = unique("squat");
        let shm = shm_name(&name);
        let fd = shm::open(
            shm.as_str(),
            shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
            Mode::from_bits_retain(0o644),
        )
        .unwrap();
        rustix::fs::fchmod(&fd, Mode::from_bits_retain(0o644)).unwrap();
        rustix::fs::ftruncate(&fd, 0x2000).unwrap();
        // Even holding a lock as a live squatter would.
        rustix::fs::flock(&fd, FlockOperation::LockShared).unwrap();
        assert_eq!(NamedObject::open(&name).unwrap_err().win32_code(), 5);
        let e = NamedObject::create_or_open(&name, &hdr(0x1000)).unwrap_err();
        assert_eq!(e.win32_code(), 5);
        // A symbolic link is not followed.
        shm::unlink(shm.as_str()).unwrap();
        rustix::fs::symlink("/dev/null", shm_path(&shm)).unwrap();
        assert_eq!(NamedObject::open(&name).unwrap_err().win32_code(), 5);
        rustix::fs::unlink(shm_path(&shm)).unwrap();
    }

    /// An object of ours whose header names another name (a hash collision) is refused.
    #[test]
    fn a_collision_is_access_denied() {
        let name = unique("coll");
        let (a, _) = NamedObject::create_or_open(&name, &hdr(0x1000)).unwrap();
        let other = ObjectName {
            ns: Namespace::Local,
            name: format!("{}-other", name.name),
        };
        // Point `other`'s derived name at `name`'s object.
        rustix::fs::link(shm_path(&a.shm), shm_path(&shm_name(&other))).unwrap();
        assert_eq!(
            NamedObject::open(&other).unwrap_err(),
            NameError::AccessDenied("name collision")
        );
        let _ = shm::unlink(shm_name(&other).as_str());
    }

    /// Processes creating, opening and dropping one name at once (and one sweeping all the
    /// while) never fail, never see a half-made object, and while a process holds the name it
    /// names that process's object; when all are done the name is gone.
    #[test]
    fn concurrent_create_open_drop() {
        let _serial = STALE.lock().unwrap_or_else(|e| e.into_inner());
        let name = unique("race");
        let shm = shm_name(&name);
        let children: Vec<_> = (0..4)
            .map(|k| {
                let name = name.clone();
                let shm = shm.clone();
                std::thread::spawn(move || {
                    in_child(move || {
                        if k == 0 {
                            for _ in 0..100 {
                                sweep_now();
                            }
                            return 0;
                        }
                        for i in 0..300 {
                            let r = if i % 3 == 2 {
                                match NamedObject::open(&name) {
                                    Err(NameError::FileNotFound(_)) => continue,
                                    r => r,
                                }
                            } else {
                                NamedObject::create_or_open(&name, &hdr(0x1000)).map(|r| r.0)
                            };
                            let Ok(obj) = r else { return 1 };
                            if obj.header() != &hdr(0x1000) {
                                return 2;
                            }
                            if !same_object(&shm, &obj.fd) {
                                return 3;
                            }
                        }
                        0
                    })
                })
            })
            .collect();
        for c in children {
            assert_eq!(c.join().unwrap(), 0);
        }
        assert!(!exists(&shm), "the last holder removed the name");
    }
}
