//! The rules of sections and views (`sections.md`), free of syscalls: CreateFileMapping's
//! flags, the protection a view gets from its desired access, the rights a handle needs, and
//! which protections a view accepts.

use crate::error::{Error, Result};
use crate::vocab::consts::*;

/// Every SEC_* bit CreateFileMapping splits off `flProtect` (CF1).
const SEC_BITS: u32 = SEC_FILE
    | SEC_IMAGE
    | SEC_RESERVE
    | SEC_COMMIT
    | SEC_NOCACHE
    | SEC_WRITECOMBINE
    | SEC_LARGE_PAGES;

/// The six protections a section may have (CF2).
const SECTION_PROTECTIONS: [u32; 6] = [
    PAGE_READONLY,
    PAGE_READWRITE,
    PAGE_WRITECOPY,
    PAGE_EXECUTE_READ,
    PAGE_EXECUTE_READWRITE,
    PAGE_EXECUTE_WRITECOPY,
];

/// A validated CreateFileMapping request (before the file and the name are looked at).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateSection {
    /// The section's page protection (one of CF2's six).
    pub protect: u32,
    /// SEC_RESERVE: pages are committed later, through views.
    pub reserve: bool,
    /// SEC_LARGE_PAGES.
    pub large_pages: bool,
    /// SEC_NOCACHE / SEC_WRITECOMBINE as PAGE_NOCACHE / PAGE_WRITECOMBINE (VQ3).
    pub modifiers: u32,
    /// SEC_IMAGE was asked for (and is otherwise valid: the caller answers 193 or 50).
    pub image: bool,
}

impl CreateSection {
    /// The attributes NtQuerySection reports (O1).
    pub fn attributes(&self, file_backed: bool) -> u32 {
        let cache = (if self.modifiers & PAGE_NOCACHE != 0 {
            SEC_NOCACHE
        } else {
            0
        }) | (if self.modifiers & PAGE_WRITECOMBINE != 0 {
            SEC_WRITECOMBINE
        } else {
            0
        });
        if self.image {
            SEC_IMAGE
        } else if file_backed {
            SEC_FILE | cache
        } else if self.reserve {
            SEC_RESERVE | cache
        } else {
            SEC_COMMIT | cache | if self.large_pages { SEC_LARGE_PAGES } else { 0 }
        }
    }
}

/// CF1–CF4: splits and checks `flProtect`; a pagefile-backed section (`file_backed` false)
/// also needs a non-zero `size` (CF3).
pub fn validate_create(fl_protect: u32, file_backed: bool, size: u64) -> Result<CreateSection> {
    let sec = fl_protect & SEC_BITS;
    let protect = fl_protect & !SEC_BITS;
    if !SECTION_PROTECTIONS.contains(&protect) {
        return Err(Error::InvalidParameter(
            "a section's protection is one of PAGE_READONLY, _READWRITE, _WRITECOPY, \
             _EXECUTE_READ, _EXECUTE_READWRITE, _EXECUTE_WRITECOPY",
        ));
    }
    let has = |b: u32| sec & b != 0;
    let bad = Error::InvalidParameter("invalid combination of SEC_* attributes");
    if has(SEC_IMAGE) {
        // IM1: SEC_NOCACHE is accepted and dropped; every other attribute is refused.
        if has(SEC_FILE | SEC_RESERVE | SEC_COMMIT | SEC_LARGE_PAGES | SEC_WRITECOMBINE) {
            return Err(bad);
        }
        return if file_backed {
            Ok(CreateSection {
                protect,
                reserve: false,
                large_pages: false,
                modifiers: 0,
                image: true,
            })
        } else {
            Err(Error::BadExeFormat)
        };
    }
    if has(SEC_FILE) || (has(SEC_COMMIT) && has(SEC_RESERVE)) {
        return Err(bad);
    }
    // Any SEC_* bit means the caller chose: SEC_COMMIT or SEC_RESERVE must be among them.
    if sec != 0 && !has(SEC_COMMIT | SEC_RESERVE) {
        return Err(bad);
    }
    if has(SEC_LARGE_PAGES) && (!has(SEC_COMMIT) || file_backed) {
        return Err(bad);
    }
    if has(SEC_NOCACHE) && has(SEC_WRITECOMBINE) {
        return Err(bad);
    }
    if !file_backed && size == 0 {
        return Err(Error::InvalidParameter(
            "a pagefile-backed section needs a size",
        ));
    }
    let modifiers = (if has(SEC_NOCACHE) { PAGE_NOCACHE } else { 0 })
        | (if has(SEC_WRITECOMBINE) {
            PAGE_WRITECOMBINE
        } else {
            0
        });
    Ok(CreateSection {
        protect,
        reserve: has(SEC_RESERVE),
        large_pages: has(SEC_LARGE_PAGES),
        modifiers,
        image: false,
    })
}

/// CF10: the access a handle from CreateFileMapping gets for a section of this protection.
pub const fn handle_access(protect: u32) -> u32 {
    let base = STANDARD_RIGHTS_REQUIRED | SECTION_QUERY | SECTION_MAP_READ;
    match protect {
        PAGE_READWRITE => base | SECTION_MAP_WRITE,
        PAGE_EXECUTE_READ | PAGE_EXECUTE_WRITECOPY => base | SECTION_MAP_EXECUTE,
        PAGE_EXECUTE_READWRITE => base | SECTION_MAP_WRITE | SECTION_MAP_EXECUTE,
        _ => base,
    }
}

/// CF5: the file access (GENERIC_READ 0x8000_0000, GENERIC_WRITE 0x4000_0000,
/// GENERIC_EXECUTE 0x2000_0000 as read / write / execute flags) a section of this protection
/// needs from its file.
pub const fn file_access_needed(protect: u32) -> (bool, bool, bool) {
    match protect {
        PAGE_READWRITE => (true, true, false),
        PAGE_EXECUTE_READ | PAGE_EXECUTE_WRITECOPY => (true, false, true),
        PAGE_EXECUTE_READWRITE => (true, true, true),
        _ => (true, false, false),
    }
}

/// MV1: the protection of a view mapped with `desired` access.
pub const fn view_protection(desired: u32) -> u32 {
    let x = desired & FILE_MAP_EXECUTE != 0;
    let a = desired & !FILE_MAP_EXECUTE;
    let (plain, exec) = if a == FILE_MAP_COPY {
        (PAGE_WRITECOPY, PAGE_EXECUTE_WRITECOPY)
    } else if a & FILE_MAP_WRITE != 0 {
        (PAGE_READWRITE, PAGE_EXECUTE_READWRITE)
    } else if a & FILE_MAP_READ != 0 {
        (PAGE_READONLY, PAGE_EXECUTE_READ)
    } else {
        return PAGE_NOACCESS;
    };
    if x {
        exec
    } else {
        plain
    }
}

/// M3-2: the protections MapViewOfFile3 accepts.
pub fn validate_view_protection(protect: u32) -> Result<u32> {
    match protect {
        PAGE_NOACCESS | PAGE_READONLY | PAGE_READWRITE | PAGE_WRITECOPY | PAGE_EXECUTE_READ
        | PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY => Ok(protect),
        _ => Err(Error::InvalidParameter("not a view protection")),
    }
}

/// MV2: whether a handle with `access` may map a view of protection `protect`.
pub const fn may_map(access: u32, protect: u32) -> bool {
    let need = match protect & 0xFF {
        PAGE_READWRITE => SECTION_MAP_WRITE,
        PAGE_EXECUTE_READWRITE => SECTION_MAP_WRITE | SECTION_MAP_EXECUTE,
        PAGE_EXECUTE | PAGE_EXECUTE_READ | PAGE_EXECUTE_WRITECOPY => {
            SECTION_MAP_READ | SECTION_MAP_EXECUTE
        }
        _ => SECTION_MAP_READ,
    };
    access & need == need
}

/// The access class of a protection: (read, write, execute) (`sections.md` AC).
pub const fn access_class(protect: u32) -> (bool, bool, bool) {
    match protect & 0xFF {
        PAGE_READONLY | PAGE_WRITECOPY => (true, false, false),
        PAGE_READWRITE => (true, true, false),
        PAGE_EXECUTE | PAGE_EXECUTE_READ | PAGE_EXECUTE_WRITECOPY => (true, false, true),
        PAGE_EXECUTE_READWRITE => (true, true, true),
        _ => (false, false, false),
    }
}

/// AC: whether `protect` is compatible with a view whose AllocationProtect is `view`.
pub const fn compatible(protect: u32, view: u32) -> bool {
    let (r, w, x) = access_class(protect);
    let (vr, vw, vx) = access_class(view);
    (!r || vr) && (!w || vw) && (!x || vx)
}

/// Whether a page protection is copy-on-write.
pub const fn is_writecopy(protect: u32) -> bool {
    matches!(protect & 0xFF, PAGE_WRITECOPY | PAGE_EXECUTE_WRITECOPY)
}

/// What a written copy-on-write page reports (CW1): PAGE_WRITECOPY → PAGE_READWRITE,
/// PAGE_EXECUTE_WRITECOPY → PAGE_EXECUTE_READWRITE (guard bits kept).
pub const fn after_copy(protect: u32) -> u32 {
    match protect & 0xFF {
        PAGE_WRITECOPY => (protect & !0xFF) | PAGE_READWRITE,
        PAGE_EXECUTE_WRITECOPY => (protect & !0xFF) | PAGE_EXECUTE_READWRITE,
        _ => protect,
    }
}

/// U5: the flags UnmapViewOfFileEx / UnmapViewOfFile2 accept.
pub fn validate_unmap_flags(flags: u32) -> Result<bool> {
    if flags & !(MEM_UNMAP_WITH_TRANSIENT_BOOST | MEM_PRESERVE_PLACEHOLDER) != 0 {
        return Err(Error::InvalidParameter("unknown unmap flags"));
    }
    Ok(flags & MEM_PRESERVE_PLACEHOLDER != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_access_gives_the_view_protection() {
        // K:4000-4037: the table of all 32 combinations follows from the rule.
        let cases = [
            (0, PAGE_NOACCESS),
            (FILE_MAP_COPY, PAGE_WRITECOPY),
            (FILE_MAP_WRITE, PAGE_READWRITE),
            (FILE_MAP_READ, PAGE_READONLY),
            (FILE_MAP_READ | FILE_MAP_WRITE, PAGE_READWRITE),
            (FILE_MAP_READ | FILE_MAP_COPY, PAGE_READONLY),
            (FILE_MAP_EXECUTE, PAGE_NOACCESS),
            (FILE_MAP_EXECUTE | FILE_MAP_READ, PAGE_EXECUTE_READ),
            (FILE_MAP_EXECUTE | FILE_MAP_COPY, PAGE_EXECUTE_WRITECOPY),
            (FILE_MAP_ALL_ACCESS, PAGE_READWRITE),
            (SECTION_MAP_EXECUTE | FILE_MAP_READ, PAGE_READONLY),
        ];
        for (access, prot) in cases {
            assert_eq!(view_protection(access), prot, "access {access:#x}");
        }
    }

    #[test]
    fn sec_combinations() {
        let ok = |f: u32, file: bool| validate_create(f | PAGE_READWRITE, file, 4096).is_ok();
        assert!(ok(0, false) && ok(SEC_COMMIT, false) && ok(SEC_RESERVE, true));
        assert!(ok(SEC_COMMIT | SEC_NOCACHE, false) && ok(SEC_RESERVE | SEC_WRITECOMBINE, true));
        for bad in [
            SEC_COMMIT | SEC_RESERVE,
            SEC_NOCACHE,
            SEC_WRITECOMBINE,
            SEC_LARGE_PAGES,
            SEC_LARGE_PAGES | SEC_RESERVE,
            SEC_FILE,
            SEC_FILE | SEC_COMMIT,
            SEC_IMAGE | SEC_COMMIT,
        ] {
            for file in [false, true] {
                assert_eq!(
                    validate_create(bad | PAGE_READWRITE, file, 4096).map_err(|e| e.win32_code()),
                    Err(87),
                    "{bad:#x} file {file}"
                );
            }
        }
        assert!(ok(SEC_COMMIT | SEC_LARGE_PAGES, false));
        assert!(!ok(SEC_COMMIT | SEC_LARGE_PAGES, true));
        assert_eq!(
            validate_create(SEC_IMAGE | PAGE_READONLY, false, 4096).map_err(|e| e.win32_code()),
            Err(193)
        );
        for p in [0, PAGE_NOACCESS, PAGE_EXECUTE, PAGE_READWRITE | PAGE_GUARD] {
            assert!(validate_create(p, false, 4096).is_err(), "{p:#x}");
        }
        assert!(validate_create(PAGE_READWRITE, false, 0).is_err());
        assert!(validate_create(PAGE_READWRITE, true, 0).is_ok());
    }

    #[test]
    fn rights_and_compatibility() {
        assert!(may_map(handle_access(PAGE_READWRITE), PAGE_READWRITE));
        assert!(!may_map(handle_access(PAGE_READONLY), PAGE_READWRITE));
        assert!(may_map(handle_access(PAGE_READONLY), PAGE_WRITECOPY));
        assert!(!may_map(handle_access(PAGE_READWRITE), PAGE_EXECUTE_READ));
        assert!(!may_map(0, PAGE_NOACCESS));
        assert!(compatible(PAGE_WRITECOPY, PAGE_READONLY));
        assert!(!compatible(PAGE_READWRITE, PAGE_READONLY));
        assert!(compatible(PAGE_NOACCESS, PAGE_NOACCESS));
        assert!(compatible(PAGE_EXECUTE, PAGE_EXECUTE_READ));
    }
}
