//! Page protections: which `PAGE_*` values are valid and what each means (`semantics.md` §2).

use crate::error::{Error, Result};
use crate::os::HostProt;
use crate::vocab::consts::*;

/// A validated protection: exactly one base value plus modifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Protection {
    /// One of PAGE_NOACCESS, READONLY, READWRITE, EXECUTE, EXECUTE_READ, EXECUTE_READWRITE.
    pub base: u32,
    /// PAGE_GUARD.
    pub guard: bool,
    /// PAGE_NOCACHE (allocation-wide).
    pub nocache: bool,
    /// PAGE_WRITECOMBINE (allocation-wide).
    pub writecombine: bool,
}

const BASES: [u32; 6] = [
    PAGE_NOACCESS,
    PAGE_READONLY,
    PAGE_READWRITE,
    PAGE_EXECUTE,
    PAGE_EXECUTE_READ,
    PAGE_EXECUTE_READWRITE,
];
const EXECUTE_BASES: u32 =
    PAGE_EXECUTE | PAGE_EXECUTE_READ | PAGE_EXECUTE_READWRITE | PAGE_EXECUTE_WRITECOPY;

impl Protection {
    /// Validates a `flProtect` value. `from_app` applies VirtualAllocFromApp's rule that no
    /// PAGE_EXECUTE* value is allowed.
    pub fn parse(value: u32, from_app: bool) -> Result<Protection> {
        Protection::parse_with(value, from_app, false)
    }

    /// [`Protection::parse`], also accepting PAGE_WRITECOPY / PAGE_EXECUTE_WRITECOPY, which
    /// only views of sections take (the engine refuses them, 87, anywhere else).
    pub fn parse_for_views(value: u32, from_app: bool) -> Result<Protection> {
        Protection::parse_with(value, from_app, true)
    }

    /// Whether the base value is copy-on-write.
    pub const fn is_writecopy(self) -> bool {
        self.base == PAGE_WRITECOPY || self.base == PAGE_EXECUTE_WRITECOPY
    }

    fn parse_with(value: u32, from_app: bool, writecopy: bool) -> Result<Protection> {
        let known = 0xFF | PAGE_GUARD | PAGE_NOCACHE | PAGE_WRITECOMBINE | PAGE_TARGETS_INVALID;
        if value & !known != 0 {
            return Err(Error::InvalidParameter("unknown protection bits"));
        }
        let base = value & 0xFF;
        if from_app && base & EXECUTE_BASES != 0 {
            return Err(Error::InvalidParameter(
                "VirtualAllocFromApp does not allow executable pages",
            ));
        }
        let copy = base == PAGE_WRITECOPY || base == PAGE_EXECUTE_WRITECOPY;
        if copy && !writecopy {
            return Err(Error::InvalidParameter(
                "copy-on-write protections are not allowed on private memory",
            ));
        }
        if !BASES.contains(&base) && !copy {
            return Err(Error::InvalidParameter(
                "the protection needs exactly one base PAGE_* value",
            ));
        }
        let p = Protection {
            base,
            guard: value & PAGE_GUARD != 0,
            nocache: value & PAGE_NOCACHE != 0,
            writecombine: value & PAGE_WRITECOMBINE != 0,
        };
        // Control Flow Guard bits: meaningful only with execute protections [doc]; no effect here.
        if value & PAGE_TARGETS_INVALID != 0 && base & EXECUTE_BASES == 0 {
            return Err(Error::InvalidParameter(
                "PAGE_TARGETS_* needs an executable protection",
            ));
        }
        // Invalid modifier mixes [I: ReactOS; doc].
        let noaccess = base == PAGE_NOACCESS;
        if (p.guard && noaccess)
            || (p.writecombine && (noaccess || p.guard))
            || (p.nocache && (p.guard || noaccess || p.writecombine))
        {
            return Err(Error::InvalidParameter(
                "invalid combination of protection modifiers",
            ));
        }
        Ok(p)
    }

    /// The per-page part (base and guard) as a Win32 value.
    pub const fn page_value(self) -> u32 {
        self.base | if self.guard { PAGE_GUARD } else { 0 }
    }

    /// The allocation-wide modifiers (PAGE_NOCACHE / PAGE_WRITECOMBINE) as Win32 bits.
    pub const fn modifiers(self) -> u32 {
        (if self.nocache { PAGE_NOCACHE } else { 0 })
            | (if self.writecombine {
                PAGE_WRITECOMBINE
            } else {
                0
            })
    }

    /// The full Win32 value (base, guard and modifiers).
    pub const fn value(self) -> u32 {
        self.page_value() | self.modifiers()
    }
}

/// The kernel protection for a committed page with Win32 page protection `page` (base and
/// guard bits). Guard pages are inaccessible until their first touch.
pub const fn host_prot(page: u32) -> HostProt {
    if page & PAGE_GUARD != 0 {
        return HostProt::NONE;
    }
    match page & 0xFF {
        PAGE_READONLY => HostProt::READ,
        PAGE_READWRITE => HostProt::READ_WRITE,
        PAGE_EXECUTE => HostProt::EXEC,
        PAGE_EXECUTE_READ => HostProt::new(true, false, true),
        PAGE_EXECUTE_READWRITE => HostProt::new(true, true, true),
        // Copy-on-write (views only): writable, on a private mapping of the section.
        PAGE_WRITECOPY => HostProt::READ_WRITE,
        PAGE_EXECUTE_WRITECOPY => HostProt::new(true, true, true),
        _ => HostProt::NONE,
    }
}

/// The Win32 protection that describes a kernel protection (for memory virtmem did not
/// allocate).
pub const fn win32_from_host(p: HostProt) -> u32 {
    match (p.read(), p.write(), p.exec()) {
        (false, false, false) => PAGE_NOACCESS,
        (true, false, false) => PAGE_READONLY,
        (_, true, false) => PAGE_READWRITE,
        (false, false, true) => PAGE_EXECUTE,
        (true, false, true) => PAGE_EXECUTE_READ,
        (_, true, true) => PAGE_EXECUTE_READWRITE,
    }
}

/// Whether pages with this page protection can be read without faulting.
pub const fn readable(page: u32) -> bool {
    host_prot(page).read()
}

/// Whether pages with this page protection can be written without faulting.
pub const fn writable(page: u32) -> bool {
    host_prot(page).write()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_single_byte_value() {
        // Case 5-8: exactly one base value from the six; WRITECOPY variants and mixes are 87.
        for v in 0u32..=0xFF {
            let ok = BASES.contains(&v);
            assert_eq!(Protection::parse(v, false).is_ok(), ok, "value {v:#x}");
        }
    }

    #[test]
    fn modifiers() {
        assert!(Protection::parse(PAGE_READWRITE | PAGE_GUARD, false).is_ok());
        assert!(Protection::parse(PAGE_READWRITE | PAGE_NOCACHE, false).is_ok());
        assert!(Protection::parse(PAGE_READONLY | PAGE_WRITECOMBINE, false).is_ok());
        assert!(Protection::parse(PAGE_NOACCESS | PAGE_GUARD, false).is_err());
        assert!(Protection::parse(PAGE_NOACCESS | PAGE_WRITECOMBINE, false).is_err());
        assert!(Protection::parse(PAGE_NOACCESS | PAGE_NOCACHE, false).is_err());
        assert!(Protection::parse(PAGE_READWRITE | PAGE_NOCACHE | PAGE_GUARD, false).is_err());
        assert!(
            Protection::parse(PAGE_READWRITE | PAGE_NOCACHE | PAGE_WRITECOMBINE, false).is_err()
        );
        assert!(Protection::parse(PAGE_READWRITE | PAGE_WRITECOMBINE | PAGE_GUARD, false).is_err());
        assert!(Protection::parse(PAGE_GUARD, false).is_err());
        assert!(Protection::parse(PAGE_EXECUTE_READ | PAGE_TARGETS_INVALID, false).is_ok());
        assert!(Protection::parse(PAGE_READWRITE | PAGE_TARGETS_INVALID, false).is_err());
        assert!(Protection::parse(0x800 | PAGE_READWRITE, false).is_err());
    }

    #[test]
    fn from_app_rejects_execute() {
        for v in [
            PAGE_EXECUTE,
            PAGE_EXECUTE_READ,
            PAGE_EXECUTE_READWRITE,
            PAGE_EXECUTE_WRITECOPY,
        ] {
            assert_eq!(
                Protection::parse(v, true).unwrap_err().win32_code(),
                87,
                "{v:#x}"
            );
        }
        assert!(Protection::parse(PAGE_READWRITE, true).is_ok());
    }
}
