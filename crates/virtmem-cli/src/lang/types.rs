//! Types of the language: integers, pointers, arrays and the Win32 structures, laid out for
//! the target's pointer size (4 bytes in a simulated 32-bit process, 8 otherwise; `long` is 4
//! bytes as on Windows).

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    Void,
    Int { size: u8, signed: bool },
    Ptr(Rc<Ty>),
    Array(Rc<Ty>, usize),
    Struct(Rc<StructDef>),
}

#[derive(Debug, PartialEq)]
pub struct StructDef {
    pub name: &'static str,
    pub size: usize,
    pub align: usize,
    pub fields: Vec<Field>,
}

#[derive(Debug, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub offset: usize,
}

impl Ty {
    pub const INT: Ty = Ty::Int {
        size: 4,
        signed: true,
    };
    pub const UINT: Ty = Ty::Int {
        size: 4,
        signed: false,
    };
    pub const CHAR: Ty = Ty::Int {
        size: 1,
        signed: true,
    };
    /// WCHAR / wchar_t: a UTF-16 unit, as on Windows.
    pub const WCHAR: Ty = Ty::Int {
        size: 2,
        signed: false,
    };
    pub const I64: Ty = Ty::Int {
        size: 8,
        signed: true,
    };
    pub const U64: Ty = Ty::Int {
        size: 8,
        signed: false,
    };

    pub fn ptr(to: Ty) -> Ty {
        Ty::Ptr(Rc::new(to))
    }

    pub fn void_ptr() -> Ty {
        Ty::ptr(Ty::Void)
    }

    pub fn size(&self, ptr: u8) -> usize {
        match self {
            Ty::Void => 1,
            Ty::Int { size, .. } => *size as usize,
            Ty::Ptr(_) => ptr as usize,
            Ty::Array(t, n) => t.size(ptr) * n,
            Ty::Struct(s) => s.size,
        }
    }

    pub fn align(&self, ptr: u8) -> usize {
        match self {
            Ty::Void => 1,
            Ty::Int { size, .. } => *size as usize,
            Ty::Ptr(_) => ptr as usize,
            Ty::Array(t, _) => t.align(ptr),
            Ty::Struct(s) => s.align,
        }
    }

    pub fn is_int(&self) -> bool {
        matches!(self, Ty::Int { .. })
    }

    pub fn is_ptr(&self) -> bool {
        matches!(self, Ty::Ptr(_))
    }

    pub fn is_scalar(&self) -> bool {
        self.is_int() || self.is_ptr()
    }

    pub fn pointee(&self) -> Option<&Ty> {
        match self {
            Ty::Ptr(t) => Some(t),
            Ty::Array(t, _) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Void => write!(f, "void"),
            Ty::Int { size, signed } => {
                let base = match size {
                    1 => "char",
                    2 => "short",
                    4 => "int",
                    _ => "long long",
                };
                if *signed {
                    write!(f, "{base}")
                } else {
                    write!(f, "unsigned {base}")
                }
            }
            Ty::Ptr(t) => write!(f, "{t} *"),
            Ty::Array(t, n) => write!(f, "{t}[{n}]"),
            Ty::Struct(s) => write!(f, "{}", s.name),
        }
    }
}

fn int(size: u8, signed: bool) -> Ty {
    Ty::Int { size, signed }
}

fn layout_struct(name: &'static str, ptr: u8, fields: &[(&'static str, Ty)]) -> Rc<StructDef> {
    let mut off: usize = 0;
    let mut align = 1;
    let mut out = Vec::new();
    for (n, t) in fields {
        let a = t.align(ptr);
        off = off.next_multiple_of(a);
        out.push(Field {
            name: n,
            ty: t.clone(),
            offset: off,
        });
        off += t.size(ptr);
        align = align.max(a);
    }
    Rc::new(StructDef {
        name,
        size: off.next_multiple_of(align),
        align,
        fields: out,
    })
}

/// The type names a program can use: C's and the Windows typedefs, for pointers of `ptr`
/// bytes.
pub struct TypeTable {
    pub names: HashMap<String, Ty>,
}

impl TypeTable {
    pub fn new(ptr: u8) -> TypeTable {
        let p = ptr;
        let size_t = int(p, false);
        let ssize_t = int(p, true);
        let dword = int(4, false);
        let word = int(2, false);
        let byte = int(1, false);
        let vp = Ty::void_ptr();
        let mut names: HashMap<String, Ty> = HashMap::new();
        let mut add = |n: &str, t: Ty| {
            names.insert(n.to_string(), t);
        };
        for (n, t) in [
            ("BYTE", byte.clone()),
            ("UCHAR", byte.clone()),
            ("BOOLEAN", byte.clone()),
            ("uint8_t", byte.clone()),
            ("CHAR", Ty::CHAR),
            ("int8_t", Ty::CHAR),
            ("WORD", word.clone()),
            ("USHORT", word.clone()),
            ("uint16_t", word.clone()),
            ("SHORT", int(2, true)),
            ("int16_t", int(2, true)),
            ("DWORD", dword.clone()),
            ("ULONG", dword.clone()),
            ("UINT", dword.clone()),
            ("uint32_t", dword.clone()),
            ("PAGE_PROTECTION_FLAGS", dword.clone()),
            ("VIRTUAL_ALLOCATION_TYPE", dword.clone()),
            ("VIRTUAL_FREE_TYPE", dword.clone()),
            ("WIN32_ERROR", dword.clone()),
            ("BOOL", Ty::INT),
            ("INT", Ty::INT),
            ("LONG", Ty::INT),
            ("int32_t", Ty::INT),
            ("NTSTATUS", Ty::INT),
            ("DWORD64", Ty::U64),
            ("ULONG64", Ty::U64),
            ("ULONGLONG", Ty::U64),
            ("QWORD", Ty::U64),
            ("uint64_t", Ty::U64),
            ("LONGLONG", Ty::I64),
            ("LONG64", Ty::I64),
            ("int64_t", Ty::I64),
            ("SIZE_T", size_t.clone()),
            ("size_t", size_t.clone()),
            ("ULONG_PTR", size_t.clone()),
            ("UINT_PTR", size_t.clone()),
            ("DWORD_PTR", size_t.clone()),
            ("uintptr_t", size_t.clone()),
            ("SSIZE_T", ssize_t.clone()),
            ("ssize_t", ssize_t.clone()),
            ("LONG_PTR", ssize_t.clone()),
            ("INT_PTR", ssize_t.clone()),
            ("intptr_t", ssize_t.clone()),
            ("ptrdiff_t", ssize_t.clone()),
            ("LPVOID", vp.clone()),
            ("PVOID", vp.clone()),
            ("LPCVOID", vp.clone()),
            ("HANDLE", vp.clone()),
            ("HMODULE", vp.clone()),
            ("LPBYTE", Ty::ptr(byte.clone())),
            ("PBYTE", Ty::ptr(byte.clone())),
            ("LPSTR", Ty::ptr(Ty::CHAR)),
            ("LPCSTR", Ty::ptr(Ty::CHAR)),
            ("PCHAR", Ty::ptr(Ty::CHAR)),
            ("PSTR", Ty::ptr(Ty::CHAR)),
            ("LPDWORD", Ty::ptr(dword.clone())),
            ("PDWORD", Ty::ptr(dword.clone())),
            ("PULONG", Ty::ptr(dword.clone())),
            ("LPWORD", Ty::ptr(word.clone())),
            ("PSIZE_T", Ty::ptr(size_t.clone())),
            ("PULONG_PTR", Ty::ptr(size_t.clone())),
            ("PBOOL", Ty::ptr(Ty::INT)),
            ("LPBOOL", Ty::ptr(Ty::INT)),
            ("WCHAR", Ty::WCHAR),
            ("wchar_t", Ty::WCHAR),
            ("LPWSTR", Ty::ptr(Ty::WCHAR)),
            ("LPCWSTR", Ty::ptr(Ty::WCHAR)),
            ("PWSTR", Ty::ptr(Ty::WCHAR)),
            ("PCWSTR", Ty::ptr(Ty::WCHAR)),
            ("PHANDLE", Ty::ptr(vp.clone())),
            ("LPHANDLE", Ty::ptr(vp.clone())),
            ("LPSECURITY_ATTRIBUTES", vp.clone()),
            ("PSECURITY_ATTRIBUTES", vp.clone()),
            ("FILE_MAP", dword.clone()),
            ("DUPLICATE_HANDLE_OPTIONS", dword.clone()),
            ("UNMAP_VIEW_OF_FILE_FLAGS", dword.clone()),
        ] {
            add(n, t);
        }
        let mbi = layout_struct(
            "MEMORY_BASIC_INFORMATION",
            p,
            &if p == 8 {
                vec![
                    ("BaseAddress", vp.clone()),
                    ("AllocationBase", vp.clone()),
                    ("AllocationProtect", dword.clone()),
                    ("PartitionId", word.clone()),
                    ("RegionSize", size_t.clone()),
                    ("State", dword.clone()),
                    ("Protect", dword.clone()),
                    ("Type", dword.clone()),
                ]
            } else {
                vec![
                    ("BaseAddress", vp.clone()),
                    ("AllocationBase", vp.clone()),
                    ("AllocationProtect", dword.clone()),
                    ("RegionSize", size_t.clone()),
                    ("State", dword.clone()),
                    ("Protect", dword.clone()),
                    ("Type", dword.clone()),
                ]
            },
        );
        let si = layout_struct(
            "SYSTEM_INFO",
            p,
            &[
                ("wProcessorArchitecture", word.clone()),
                ("wReserved", word.clone()),
                ("dwPageSize", dword.clone()),
                ("lpMinimumApplicationAddress", vp.clone()),
                ("lpMaximumApplicationAddress", vp.clone()),
                ("dwActiveProcessorMask", size_t.clone()),
                ("dwNumberOfProcessors", dword.clone()),
                ("dwProcessorType", dword.clone()),
                ("dwAllocationGranularity", dword.clone()),
                ("wProcessorLevel", word.clone()),
                ("wProcessorRevision", word.clone()),
            ],
        );
        // dwOemId overlays the first two WORDs.
        let si = Rc::new(StructDef {
            name: si.name,
            size: si.size,
            align: si.align,
            fields: {
                let mut f: Vec<Field> = Vec::new();
                for x in &si.fields {
                    f.push(Field {
                        name: x.name,
                        ty: x.ty.clone(),
                        offset: x.offset,
                    });
                }
                f.push(Field {
                    name: "dwOemId",
                    ty: dword.clone(),
                    offset: 0,
                });
                f
            },
        });
        let range = layout_struct(
            "WIN32_MEMORY_RANGE_ENTRY",
            p,
            &[
                ("VirtualAddress", vp.clone()),
                ("NumberOfBytes", size_t.clone()),
            ],
        );
        let req = layout_struct(
            "MEM_ADDRESS_REQUIREMENTS",
            p,
            &[
                ("LowestStartingAddress", vp.clone()),
                ("HighestEndingAddress", vp.clone()),
                ("Alignment", size_t.clone()),
            ],
        );
        // MEM_EXTENDED_PARAMETER: an 8-byte Type (its low 8 bits) and an 8-byte union.
        let ext = Rc::new(StructDef {
            name: "MEM_EXTENDED_PARAMETER",
            size: 16,
            align: 8,
            fields: vec![
                Field {
                    name: "Type",
                    ty: Ty::U64,
                    offset: 0,
                },
                Field {
                    name: "ULong64",
                    ty: Ty::U64,
                    offset: 8,
                },
                Field {
                    name: "Pointer",
                    ty: vp.clone(),
                    offset: 8,
                },
                Field {
                    name: "Size",
                    ty: size_t.clone(),
                    offset: 8,
                },
                Field {
                    name: "Handle",
                    ty: vp.clone(),
                    offset: 8,
                },
                Field {
                    name: "ULong",
                    ty: dword.clone(),
                    offset: 8,
                },
            ],
        });
        for (names_of, def) in [
            (
                &[
                    "MEMORY_BASIC_INFORMATION",
                    "_MEMORY_BASIC_INFORMATION",
                    "PMEMORY_BASIC_INFORMATION",
                ][..],
                mbi,
            ),
            (&["SYSTEM_INFO", "_SYSTEM_INFO", "LPSYSTEM_INFO"][..], si),
            (
                &[
                    "WIN32_MEMORY_RANGE_ENTRY",
                    "_WIN32_MEMORY_RANGE_ENTRY",
                    "PWIN32_MEMORY_RANGE_ENTRY",
                ][..],
                range,
            ),
            (
                &[
                    "MEM_ADDRESS_REQUIREMENTS",
                    "_MEM_ADDRESS_REQUIREMENTS",
                    "PMEM_ADDRESS_REQUIREMENTS",
                ][..],
                req,
            ),
            (
                &[
                    "MEM_EXTENDED_PARAMETER",
                    "_MEM_EXTENDED_PARAMETER",
                    "PMEM_EXTENDED_PARAMETER",
                ][..],
                ext,
            ),
        ] {
            for (i, n) in names_of.iter().enumerate() {
                let t = Ty::Struct(def.clone());
                // The last spelling is the pointer typedef.
                let t = if i == 2 { Ty::ptr(t) } else { t };
                names.insert(n.to_string(), t);
            }
        }
        TypeTable { names }
    }

    pub fn get(&self, name: &str) -> Option<&Ty> {
        self.names.get(name)
    }

    /// A `struct NAME` reference.
    pub fn get_struct(&self, name: &str) -> Option<Ty> {
        let n = name.strip_prefix('_').unwrap_or(name);
        match self.names.get(n) {
            Some(t @ Ty::Struct(_)) => Some(t.clone()),
            _ => None,
        }
    }
}
