//! The names a program can use without declaring them: every Win32 constant virtmem has,
//! a few C ones, and the signatures of the Win32 memory functions (for the traces).

use super::types::Ty;
use virtmem::win32::consts as c;

/// The C type of a constant.
#[derive(Clone, Copy)]
enum K {
    /// DWORD.
    D,
    /// A signed 32-bit value (NTSTATUS, enum values).
    I,
    /// WORD.
    W,
}

const TABLE: &[(&str, u64, K)] = &[
    // Heaps and Global/Local memory (issue 16).
    ("HEAP_NO_SERIALIZE", c::HEAP_NO_SERIALIZE as u64, K::D),
    (
        "HEAP_GENERATE_EXCEPTIONS",
        c::HEAP_GENERATE_EXCEPTIONS as u64,
        K::D,
    ),
    ("HEAP_ZERO_MEMORY", c::HEAP_ZERO_MEMORY as u64, K::D),
    (
        "HEAP_REALLOC_IN_PLACE_ONLY",
        c::HEAP_REALLOC_IN_PLACE_ONLY as u64,
        K::D,
    ),
    (
        "HEAP_CREATE_ENABLE_EXECUTE",
        c::HEAP_CREATE_ENABLE_EXECUTE as u64,
        K::D,
    ),
    ("PROCESS_HEAP_REGION", c::PROCESS_HEAP_REGION as u64, K::D),
    (
        "PROCESS_HEAP_UNCOMMITTED_RANGE",
        c::PROCESS_HEAP_UNCOMMITTED_RANGE as u64,
        K::D,
    ),
    (
        "PROCESS_HEAP_ENTRY_BUSY",
        c::PROCESS_HEAP_ENTRY_BUSY as u64,
        K::D,
    ),
    ("GMEM_FIXED", c::GMEM_FIXED as u64, K::D),
    ("GMEM_MOVEABLE", c::GMEM_MOVEABLE as u64, K::D),
    ("GMEM_ZEROINIT", c::GMEM_ZEROINIT as u64, K::D),
    ("GMEM_MODIFY", c::GMEM_MODIFY as u64, K::D),
    ("GMEM_DISCARDABLE", c::GMEM_DISCARDABLE as u64, K::D),
    ("GMEM_DDESHARE", c::GMEM_DDESHARE as u64, K::D),
    ("GMEM_DISCARDED", c::GMEM_DISCARDED as u64, K::D),
    ("GMEM_INVALID_HANDLE", c::GMEM_INVALID_HANDLE as u64, K::D),
    ("GMEM_LOCKCOUNT", c::GMEM_LOCKCOUNT as u64, K::D),
    ("GHND", c::GHND as u64, K::D),
    ("GPTR", c::GPTR as u64, K::D),
    ("LMEM_FIXED", c::LMEM_FIXED as u64, K::D),
    ("LMEM_MOVEABLE", c::LMEM_MOVEABLE as u64, K::D),
    ("LMEM_ZEROINIT", c::LMEM_ZEROINIT as u64, K::D),
    ("LMEM_MODIFY", c::LMEM_MODIFY as u64, K::D),
    ("LMEM_DISCARDABLE", c::LMEM_DISCARDABLE as u64, K::D),
    ("LMEM_DISCARDED", c::LMEM_DISCARDED as u64, K::D),
    ("LMEM_INVALID_HANDLE", c::LMEM_INVALID_HANDLE as u64, K::D),
    ("LHND", c::LHND as u64, K::D),
    ("LPTR", c::LPTR as u64, K::D),
    ("ERROR_DISCARDED", c::ERROR_DISCARDED as u64, K::D),
    ("ERROR_NO_MORE_ITEMS", c::ERROR_NO_MORE_ITEMS as u64, K::D),
    ("MEM_COMMIT", c::MEM_COMMIT as u64, K::D),
    ("MEM_RESERVE", c::MEM_RESERVE as u64, K::D),
    (
        "MEM_REPLACE_PLACEHOLDER",
        c::MEM_REPLACE_PLACEHOLDER as u64,
        K::D,
    ),
    (
        "MEM_RESERVE_PLACEHOLDER",
        c::MEM_RESERVE_PLACEHOLDER as u64,
        K::D,
    ),
    ("MEM_RESET", c::MEM_RESET as u64, K::D),
    ("MEM_RESET_UNDO", c::MEM_RESET_UNDO as u64, K::D),
    ("MEM_LARGE_PAGES", c::MEM_LARGE_PAGES as u64, K::D),
    ("MEM_FREE", c::MEM_FREE as u64, K::D),
    ("MEM_DECOMMIT", c::MEM_DECOMMIT as u64, K::D),
    ("MEM_RELEASE", c::MEM_RELEASE as u64, K::D),
    ("MEM_PRIVATE", c::MEM_PRIVATE as u64, K::D),
    ("MEM_MAPPED", c::MEM_MAPPED as u64, K::D),
    ("MEM_IMAGE", c::MEM_IMAGE as u64, K::D),
    ("MEM_TOP_DOWN", c::MEM_TOP_DOWN as u64, K::D),
    ("MEM_WRITE_WATCH", c::MEM_WRITE_WATCH as u64, K::D),
    ("MEM_PHYSICAL", c::MEM_PHYSICAL as u64, K::D),
    ("MEM_ROTATE", c::MEM_ROTATE as u64, K::D),
    ("MEM_4MB_PAGES", c::MEM_4MB_PAGES as u64, K::D),
    (
        "MEM_COALESCE_PLACEHOLDERS",
        c::MEM_COALESCE_PLACEHOLDERS as u64,
        K::D,
    ),
    (
        "MEM_PRESERVE_PLACEHOLDER",
        c::MEM_PRESERVE_PLACEHOLDER as u64,
        K::D,
    ),
    (
        "MEM_UNMAP_WITH_TRANSIENT_BOOST",
        c::MEM_UNMAP_WITH_TRANSIENT_BOOST as u64,
        K::D,
    ),
    (
        "WRITE_WATCH_FLAG_RESET",
        c::WRITE_WATCH_FLAG_RESET as u64,
        K::D,
    ),
    ("MEM_64K_PAGES", c::MEM_64K_PAGES as u64, K::D),
    ("AT_ROUND_TO_PAGE", c::AT_ROUND_TO_PAGE as u64, K::D),
    ("PAGE_NOACCESS", c::PAGE_NOACCESS as u64, K::D),
    ("PAGE_READONLY", c::PAGE_READONLY as u64, K::D),
    ("PAGE_READWRITE", c::PAGE_READWRITE as u64, K::D),
    ("PAGE_WRITECOPY", c::PAGE_WRITECOPY as u64, K::D),
    ("PAGE_EXECUTE", c::PAGE_EXECUTE as u64, K::D),
    ("PAGE_EXECUTE_READ", c::PAGE_EXECUTE_READ as u64, K::D),
    (
        "PAGE_EXECUTE_READWRITE",
        c::PAGE_EXECUTE_READWRITE as u64,
        K::D,
    ),
    (
        "PAGE_EXECUTE_WRITECOPY",
        c::PAGE_EXECUTE_WRITECOPY as u64,
        K::D,
    ),
    ("PAGE_GUARD", c::PAGE_GUARD as u64, K::D),
    ("PAGE_NOCACHE", c::PAGE_NOCACHE as u64, K::D),
    ("PAGE_WRITECOMBINE", c::PAGE_WRITECOMBINE as u64, K::D),
    ("PAGE_TARGETS_INVALID", c::PAGE_TARGETS_INVALID as u64, K::D),
    (
        "PAGE_TARGETS_NO_UPDATE",
        c::PAGE_TARGETS_NO_UPDATE as u64,
        K::D,
    ),
    ("SEC_FILE", c::SEC_FILE as u64, K::D),
    ("SEC_IMAGE", c::SEC_IMAGE as u64, K::D),
    ("SEC_RESERVE", c::SEC_RESERVE as u64, K::D),
    ("SEC_COMMIT", c::SEC_COMMIT as u64, K::D),
    ("SEC_NOCACHE", c::SEC_NOCACHE as u64, K::D),
    ("SEC_WRITECOMBINE", c::SEC_WRITECOMBINE as u64, K::D),
    ("SEC_LARGE_PAGES", c::SEC_LARGE_PAGES as u64, K::D),
    ("FILE_MAP_COPY", c::FILE_MAP_COPY as u64, K::D),
    ("FILE_MAP_WRITE", c::FILE_MAP_WRITE as u64, K::D),
    ("FILE_MAP_READ", c::FILE_MAP_READ as u64, K::D),
    ("FILE_MAP_EXECUTE", c::FILE_MAP_EXECUTE as u64, K::D),
    ("FILE_MAP_ALL_ACCESS", c::FILE_MAP_ALL_ACCESS as u64, K::D),
    ("FILE_MAP_LARGE_PAGES", c::FILE_MAP_LARGE_PAGES as u64, K::D),
    (
        "FILE_MAP_TARGETS_INVALID",
        c::FILE_MAP_TARGETS_INVALID as u64,
        K::D,
    ),
    ("FILE_MAP_RESERVE", c::FILE_MAP_RESERVE as u64, K::D),
    ("SECTION_QUERY", c::SECTION_QUERY as u64, K::D),
    ("SECTION_MAP_WRITE", c::SECTION_MAP_WRITE as u64, K::D),
    ("SECTION_MAP_READ", c::SECTION_MAP_READ as u64, K::D),
    ("SECTION_MAP_EXECUTE", c::SECTION_MAP_EXECUTE as u64, K::D),
    ("SECTION_EXTEND_SIZE", c::SECTION_EXTEND_SIZE as u64, K::D),
    (
        "SECTION_MAP_EXECUTE_EXPLICIT",
        c::SECTION_MAP_EXECUTE_EXPLICIT as u64,
        K::D,
    ),
    ("SECTION_ALL_ACCESS", c::SECTION_ALL_ACCESS as u64, K::D),
    (
        "STANDARD_RIGHTS_REQUIRED",
        c::STANDARD_RIGHTS_REQUIRED as u64,
        K::D,
    ),
    ("SEC_IMAGE_NO_EXECUTE", c::SEC_IMAGE_NO_EXECUTE as u64, K::D),
    (
        "DUPLICATE_CLOSE_SOURCE",
        c::DUPLICATE_CLOSE_SOURCE as u64,
        K::D,
    ),
    (
        "DUPLICATE_SAME_ACCESS",
        c::DUPLICATE_SAME_ACCESS as u64,
        K::D,
    ),
    (
        "NUMA_NO_PREFERRED_NODE",
        c::NUMA_NO_PREFERRED_NODE as u64,
        K::D,
    ),
    ("ERROR_FILE_NOT_FOUND", c::ERROR_FILE_NOT_FOUND as u64, K::D),
    ("ERROR_PATH_NOT_FOUND", c::ERROR_PATH_NOT_FOUND as u64, K::D),
    ("ERROR_INVALID_HANDLE", c::ERROR_INVALID_HANDLE as u64, K::D),
    ("ERROR_ALREADY_EXISTS", c::ERROR_ALREADY_EXISTS as u64, K::D),
    ("ERROR_BAD_EXE_FORMAT", c::ERROR_BAD_EXE_FORMAT as u64, K::D),
    (
        "ERROR_FILENAME_EXCED_RANGE",
        c::ERROR_FILENAME_EXCED_RANGE as u64,
        K::D,
    ),
    ("ERROR_FILE_INVALID", c::ERROR_FILE_INVALID as u64, K::D),
    (
        "ERROR_USER_MAPPED_FILE",
        c::ERROR_USER_MAPPED_FILE as u64,
        K::D,
    ),
    ("ERROR_SUCCESS", c::ERROR_SUCCESS as u64, K::D),
    ("ERROR_INTERNAL_ERROR", c::ERROR_INTERNAL_ERROR as u64, K::D),
    ("ERROR_BUSY", c::ERROR_BUSY as u64, K::D),
    ("ERROR_ACCESS_DENIED", c::ERROR_ACCESS_DENIED as u64, K::D),
    (
        "ERROR_NOT_ENOUGH_MEMORY",
        c::ERROR_NOT_ENOUGH_MEMORY as u64,
        K::D,
    ),
    ("ERROR_OUTOFMEMORY", c::ERROR_OUTOFMEMORY as u64, K::D),
    ("ERROR_BAD_LENGTH", c::ERROR_BAD_LENGTH as u64, K::D),
    ("ERROR_NOT_SUPPORTED", c::ERROR_NOT_SUPPORTED as u64, K::D),
    ("ERROR_UNEXP_NET_ERR", c::ERROR_UNEXP_NET_ERR as u64, K::D),
    (
        "ERROR_INVALID_PARAMETER",
        c::ERROR_INVALID_PARAMETER as u64,
        K::D,
    ),
    (
        "ERROR_CALL_NOT_IMPLEMENTED",
        c::ERROR_CALL_NOT_IMPLEMENTED as u64,
        K::D,
    ),
    ("ERROR_NOT_LOCKED", c::ERROR_NOT_LOCKED as u64, K::D),
    ("ERROR_PARTIAL_COPY", c::ERROR_PARTIAL_COPY as u64, K::D),
    (
        "ERROR_MR_MID_NOT_FOUND",
        c::ERROR_MR_MID_NOT_FOUND as u64,
        K::D,
    ),
    (
        "ERROR_INVALID_ADDRESS",
        c::ERROR_INVALID_ADDRESS as u64,
        K::D,
    ),
    ("ERROR_NOACCESS", c::ERROR_NOACCESS as u64, K::D),
    ("ERROR_SWAPERROR", c::ERROR_SWAPERROR as u64, K::D),
    ("ERROR_STACK_OVERFLOW", c::ERROR_STACK_OVERFLOW as u64, K::D),
    ("ERROR_INVALID_FLAGS", c::ERROR_INVALID_FLAGS as u64, K::D),
    (
        "ERROR_MAPPED_ALIGNMENT",
        c::ERROR_MAPPED_ALIGNMENT as u64,
        K::D,
    ),
    (
        "ERROR_PRIVILEGE_NOT_HELD",
        c::ERROR_PRIVILEGE_NOT_HELD as u64,
        K::D,
    ),
    (
        "ERROR_NO_SYSTEM_RESOURCES",
        c::ERROR_NO_SYSTEM_RESOURCES as u64,
        K::D,
    ),
    (
        "ERROR_WORKING_SET_QUOTA",
        c::ERROR_WORKING_SET_QUOTA as u64,
        K::D,
    ),
    (
        "ERROR_COMMITMENT_LIMIT",
        c::ERROR_COMMITMENT_LIMIT as u64,
        K::D,
    ),
    (
        "ERROR_INVALID_USER_BUFFER",
        c::ERROR_INVALID_USER_BUFFER as u64,
        K::D,
    ),
    ("STATUS_SUCCESS", c::STATUS_SUCCESS as u64, K::I),
    (
        "STATUS_WORKING_SET_LIMIT_RANGE",
        c::STATUS_WORKING_SET_LIMIT_RANGE as u64,
        K::I,
    ),
    ("STATUS_WAS_LOCKED", c::STATUS_WAS_LOCKED as u64, K::I),
    (
        "STATUS_GUARD_PAGE_VIOLATION",
        c::STATUS_GUARD_PAGE_VIOLATION as u64,
        K::I,
    ),
    ("STATUS_PARTIAL_COPY", c::STATUS_PARTIAL_COPY as u64, K::I),
    (
        "STATUS_INVALID_INFO_CLASS",
        c::STATUS_INVALID_INFO_CLASS as u64,
        K::I,
    ),
    (
        "STATUS_INFO_LENGTH_MISMATCH",
        c::STATUS_INFO_LENGTH_MISMATCH as u64,
        K::I,
    ),
    (
        "STATUS_ACCESS_VIOLATION",
        c::STATUS_ACCESS_VIOLATION as u64,
        K::I,
    ),
    ("STATUS_IN_PAGE_ERROR", c::STATUS_IN_PAGE_ERROR as u64, K::I),
    (
        "STATUS_INVALID_PARAMETER",
        c::STATUS_INVALID_PARAMETER as u64,
        K::I,
    ),
    ("STATUS_NO_MEMORY", c::STATUS_NO_MEMORY as u64, K::I),
    (
        "STATUS_CONFLICTING_ADDRESSES",
        c::STATUS_CONFLICTING_ADDRESSES as u64,
        K::I,
    ),
    (
        "STATUS_NOT_MAPPED_VIEW",
        c::STATUS_NOT_MAPPED_VIEW as u64,
        K::I,
    ),
    (
        "STATUS_UNABLE_TO_FREE_VM",
        c::STATUS_UNABLE_TO_FREE_VM as u64,
        K::I,
    ),
    (
        "STATUS_UNABLE_TO_DELETE_SECTION",
        c::STATUS_UNABLE_TO_DELETE_SECTION as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_VIEW_SIZE",
        c::STATUS_INVALID_VIEW_SIZE as u64,
        K::I,
    ),
    (
        "STATUS_ALREADY_COMMITTED",
        c::STATUS_ALREADY_COMMITTED as u64,
        K::I,
    ),
    ("STATUS_ACCESS_DENIED", c::STATUS_ACCESS_DENIED as u64, K::I),
    ("STATUS_NOT_LOCKED", c::STATUS_NOT_LOCKED as u64, K::I),
    (
        "STATUS_UNABLE_TO_DECOMMIT_VM",
        c::STATUS_UNABLE_TO_DECOMMIT_VM as u64,
        K::I,
    ),
    ("STATUS_NOT_COMMITTED", c::STATUS_NOT_COMMITTED as u64, K::I),
    (
        "STATUS_SECTION_TOO_BIG",
        c::STATUS_SECTION_TOO_BIG as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_PAGE_PROTECTION",
        c::STATUS_INVALID_PAGE_PROTECTION as u64,
        K::I,
    ),
    (
        "STATUS_INCOMPATIBLE_FILE_MAP",
        c::STATUS_INCOMPATIBLE_FILE_MAP as u64,
        K::I,
    ),
    (
        "STATUS_PRIVILEGE_NOT_HELD",
        c::STATUS_PRIVILEGE_NOT_HELD as u64,
        K::I,
    ),
    (
        "STATUS_RANGE_NOT_LOCKED",
        c::STATUS_RANGE_NOT_LOCKED as u64,
        K::I,
    ),
    (
        "STATUS_FREE_VM_NOT_AT_BASE",
        c::STATUS_FREE_VM_NOT_AT_BASE as u64,
        K::I,
    ),
    (
        "STATUS_MEMORY_NOT_ALLOCATED",
        c::STATUS_MEMORY_NOT_ALLOCATED as u64,
        K::I,
    ),
    (
        "STATUS_WORKING_SET_QUOTA",
        c::STATUS_WORKING_SET_QUOTA as u64,
        K::I,
    ),
    ("STATUS_NOT_SUPPORTED", c::STATUS_NOT_SUPPORTED as u64, K::I),
    (
        "STATUS_INVALID_PARAMETER_1",
        c::STATUS_INVALID_PARAMETER_1 as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_PARAMETER_2",
        c::STATUS_INVALID_PARAMETER_2 as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_PARAMETER_3",
        c::STATUS_INVALID_PARAMETER_3 as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_PARAMETER_4",
        c::STATUS_INVALID_PARAMETER_4 as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_PARAMETER_5",
        c::STATUS_INVALID_PARAMETER_5 as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_PARAMETER_6",
        c::STATUS_INVALID_PARAMETER_6 as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_PARAMETER_7",
        c::STATUS_INVALID_PARAMETER_7 as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_PARAMETER_8",
        c::STATUS_INVALID_PARAMETER_8 as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_PARAMETER_9",
        c::STATUS_INVALID_PARAMETER_9 as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_PARAMETER_10",
        c::STATUS_INVALID_PARAMETER_10 as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_PARAMETER_11",
        c::STATUS_INVALID_PARAMETER_11 as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_PARAMETER_12",
        c::STATUS_INVALID_PARAMETER_12 as u64,
        K::I,
    ),
    (
        "STATUS_STACK_OVERFLOW",
        c::STATUS_STACK_OVERFLOW as u64,
        K::I,
    ),
    (
        "STATUS_COMMITMENT_LIMIT",
        c::STATUS_COMMITMENT_LIMIT as u64,
        K::I,
    ),
    (
        "STATUS_INVALID_ADDRESS",
        c::STATUS_INVALID_ADDRESS as u64,
        K::I,
    ),
    (
        "STATUS_MAPPED_ALIGNMENT",
        c::STATUS_MAPPED_ALIGNMENT as u64,
        K::I,
    ),
    ("EXCEPTION_READ_FAULT", c::EXCEPTION_READ_FAULT as u64, K::D),
    (
        "EXCEPTION_WRITE_FAULT",
        c::EXCEPTION_WRITE_FAULT as u64,
        K::D,
    ),
    (
        "EXCEPTION_EXECUTE_FAULT",
        c::EXCEPTION_EXECUTE_FAULT as u64,
        K::D,
    ),
    (
        "PROCESSOR_ARCHITECTURE_INTEL",
        c::PROCESSOR_ARCHITECTURE_INTEL as u64,
        K::W,
    ),
    (
        "PROCESSOR_ARCHITECTURE_ARM",
        c::PROCESSOR_ARCHITECTURE_ARM as u64,
        K::W,
    ),
    (
        "PROCESSOR_ARCHITECTURE_IA64",
        c::PROCESSOR_ARCHITECTURE_IA64 as u64,
        K::W,
    ),
    (
        "PROCESSOR_ARCHITECTURE_AMD64",
        c::PROCESSOR_ARCHITECTURE_AMD64 as u64,
        K::W,
    ),
    (
        "PROCESSOR_ARCHITECTURE_IA32_ON_WIN64",
        c::PROCESSOR_ARCHITECTURE_IA32_ON_WIN64 as u64,
        K::W,
    ),
    (
        "PROCESSOR_ARCHITECTURE_ARM64",
        c::PROCESSOR_ARCHITECTURE_ARM64 as u64,
        K::W,
    ),
    (
        "PROCESSOR_ARCHITECTURE_UNKNOWN",
        c::PROCESSOR_ARCHITECTURE_UNKNOWN as u64,
        K::W,
    ),
    ("PROCESSOR_INTEL_386", c::PROCESSOR_INTEL_386 as u64, K::D),
    ("PROCESSOR_INTEL_486", c::PROCESSOR_INTEL_486 as u64, K::D),
    (
        "PROCESSOR_INTEL_PENTIUM",
        c::PROCESSOR_INTEL_PENTIUM as u64,
        K::D,
    ),
    ("PROCESSOR_INTEL_IA64", c::PROCESSOR_INTEL_IA64 as u64, K::D),
    ("PROCESSOR_AMD_X8664", c::PROCESSOR_AMD_X8664 as u64, K::D),
    (
        "MemExtendedParameterInvalidType",
        c::MemExtendedParameterInvalidType as u64,
        K::I,
    ),
    (
        "MemExtendedParameterAddressRequirements",
        c::MemExtendedParameterAddressRequirements as u64,
        K::I,
    ),
    (
        "MemExtendedParameterNumaNode",
        c::MemExtendedParameterNumaNode as u64,
        K::I,
    ),
    (
        "MemExtendedParameterPartitionHandle",
        c::MemExtendedParameterPartitionHandle as u64,
        K::I,
    ),
    (
        "MemExtendedParameterUserPhysicalHandle",
        c::MemExtendedParameterUserPhysicalHandle as u64,
        K::I,
    ),
    (
        "MemExtendedParameterAttributeFlags",
        c::MemExtendedParameterAttributeFlags as u64,
        K::I,
    ),
    (
        "MemExtendedParameterImageMachine",
        c::MemExtendedParameterImageMachine as u64,
        K::I,
    ),
    (
        "MemExtendedParameterMax",
        c::MemExtendedParameterMax as u64,
        K::I,
    ),
    ("ERROR_INTERNAL_ERROR", c::ERROR_INTERNAL_ERROR as u64, K::D),
    ("TRUE", 1, K::I),
    ("FALSE", 0, K::I),
    ("EXCEPTION_EXECUTE_HANDLER", 1, K::I),
    ("EXCEPTION_CONTINUE_SEARCH", 0, K::I),
    ("EXCEPTION_CONTINUE_EXECUTION", 0xFFFF_FFFF, K::I),
    ("EXCEPTION_ACCESS_VIOLATION", 0xC000_0005, K::D),
    ("EXCEPTION_GUARD_PAGE", 0x8000_0001, K::D),
    ("EXCEPTION_INT_DIVIDE_BY_ZERO", 0xC000_0094, K::D),
    ("EXCEPTION_STACK_OVERFLOW", 0xC000_00FD, K::D),
    ("STATUS_INTEGER_DIVIDE_BY_ZERO", 0xC000_0094, K::D),
    ("EOF", 0xFFFF_FFFF, K::I),
    ("EXIT_SUCCESS", 0, K::I),
    ("EXIT_FAILURE", 1, K::I),
];

/// The value and type of a named constant (`NULL` and `INVALID_HANDLE_VALUE` are pointers,
/// see [`pointer_constant`]).
pub fn constant(name: &str) -> Option<(u64, Ty)> {
    let (_, v, k) = TABLE.iter().find(|(n, _, _)| *n == name)?;
    Some(match k {
        K::D => (*v & 0xFFFF_FFFF, Ty::UINT),
        K::I => (*v & 0xFFFF_FFFF, Ty::INT),
        K::W => (
            *v & 0xFFFF,
            Ty::Int {
                size: 2,
                signed: false,
            },
        ),
    })
}

/// `NULL`, `GetCurrentProcess()`'s handle as a name, `INVALID_HANDLE_VALUE`.
pub fn pointer_constant(name: &str) -> Option<u64> {
    match name {
        "NULL" | "nullptr" => Some(0),
        "INVALID_HANDLE_VALUE" | "NtCurrentProcess" => Some(u64::MAX),
        _ => None,
    }
}

/// Every constant's name (for `help` and suggestions).
pub fn constant_names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(n, _, _)| *n)
}

/// How a value of a Win32 call is shown in a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    /// An address (hex, NULL).
    Addr,
    /// A size (hex).
    Size,
    /// A count (decimal).
    Count,
    /// MEM_* allocation type flags.
    AllocType,
    /// MEM_* free type flags.
    FreeType,
    /// PAGE_* protection.
    Protect,
    /// A process handle.
    Handle,
    /// A pointer to an output (its address).
    Out,
    /// Flags in hex.
    Flags,
    /// A BOOL result.
    Bool,
    /// A Win32 error code.
    Error,
    /// CreateFileMapping's file handle (INVALID_HANDLE_VALUE: the paging file).
    FileHandle,
    /// FILE_MAP_* access rights.
    Access,
    /// A section's PAGE_* protection with its SEC_* attributes.
    SecProtect,
    /// A string argument (a name).
    Str,
    /// DUPLICATE_* options.
    DupOptions,
}

/// A Win32 function: its parameters and result as shown in traces, and whether it sets the
/// last error (a failing call does).
pub struct Sig {
    pub name: &'static str,
    pub params: &'static [Show],
    pub ret: Option<Show>,
}

use Show::*;

pub const WIN32: &[Sig] = &[
    // Heaps and Global/Local memory (issue 16; simulated processes only).
    Sig {
        name: "GetProcessHeap",
        params: &[],
        ret: Some(Addr),
    },
    Sig {
        name: "HeapCreate",
        params: &[Flags, Size, Size],
        ret: Some(Addr),
    },
    Sig {
        name: "HeapDestroy",
        params: &[Addr],
        ret: Some(Bool),
    },
    Sig {
        name: "HeapAlloc",
        params: &[Addr, Flags, Size],
        ret: Some(Addr),
    },
    Sig {
        name: "HeapReAlloc",
        params: &[Addr, Flags, Addr, Size],
        ret: Some(Addr),
    },
    Sig {
        name: "HeapFree",
        params: &[Addr, Flags, Addr],
        ret: Some(Bool),
    },
    Sig {
        name: "HeapSize",
        params: &[Addr, Flags, Addr],
        ret: Some(Size),
    },
    Sig {
        name: "HeapValidate",
        params: &[Addr, Flags, Addr],
        ret: Some(Bool),
    },
    Sig {
        name: "HeapCompact",
        params: &[Addr, Flags],
        ret: Some(Size),
    },
    Sig {
        name: "HeapWalk",
        params: &[Addr, Out],
        ret: Some(Bool),
    },
    Sig {
        name: "GlobalAlloc",
        params: &[Flags, Size],
        ret: Some(Addr),
    },
    Sig {
        name: "GlobalReAlloc",
        params: &[Addr, Size, Flags],
        ret: Some(Addr),
    },
    Sig {
        name: "GlobalFree",
        params: &[Addr],
        ret: Some(Addr),
    },
    Sig {
        name: "GlobalLock",
        params: &[Addr],
        ret: Some(Addr),
    },
    Sig {
        name: "GlobalUnlock",
        params: &[Addr],
        ret: Some(Bool),
    },
    Sig {
        name: "GlobalSize",
        params: &[Addr],
        ret: Some(Size),
    },
    Sig {
        name: "GlobalFlags",
        params: &[Addr],
        ret: Some(Flags),
    },
    Sig {
        name: "GlobalHandle",
        params: &[Addr],
        ret: Some(Addr),
    },
    Sig {
        name: "GlobalDiscard",
        params: &[Addr],
        ret: Some(Addr),
    },
    Sig {
        name: "LocalAlloc",
        params: &[Flags, Size],
        ret: Some(Addr),
    },
    Sig {
        name: "LocalReAlloc",
        params: &[Addr, Size, Flags],
        ret: Some(Addr),
    },
    Sig {
        name: "LocalFree",
        params: &[Addr],
        ret: Some(Addr),
    },
    Sig {
        name: "LocalLock",
        params: &[Addr],
        ret: Some(Addr),
    },
    Sig {
        name: "LocalUnlock",
        params: &[Addr],
        ret: Some(Bool),
    },
    Sig {
        name: "LocalSize",
        params: &[Addr],
        ret: Some(Size),
    },
    Sig {
        name: "LocalFlags",
        params: &[Addr],
        ret: Some(Flags),
    },
    Sig {
        name: "LocalHandle",
        params: &[Addr],
        ret: Some(Addr),
    },
    Sig {
        name: "LocalDiscard",
        params: &[Addr],
        ret: Some(Addr),
    },
    Sig {
        name: "VirtualAlloc",
        params: &[Addr, Size, AllocType, Protect],
        ret: Some(Addr),
    },
    Sig {
        name: "VirtualAllocEx",
        params: &[Handle, Addr, Size, AllocType, Protect],
        ret: Some(Addr),
    },
    Sig {
        name: "VirtualAllocExNuma",
        params: &[Handle, Addr, Size, AllocType, Protect, Count],
        ret: Some(Addr),
    },
    Sig {
        name: "VirtualAllocFromApp",
        params: &[Addr, Size, AllocType, Protect],
        ret: Some(Addr),
    },
    Sig {
        name: "VirtualAlloc2",
        params: &[Handle, Addr, Size, AllocType, Protect, Out, Count],
        ret: Some(Addr),
    },
    Sig {
        name: "VirtualAlloc2FromApp",
        params: &[Handle, Addr, Size, AllocType, Protect, Out, Count],
        ret: Some(Addr),
    },
    Sig {
        name: "VirtualFree",
        params: &[Addr, Size, FreeType],
        ret: Some(Bool),
    },
    Sig {
        name: "VirtualFreeEx",
        params: &[Handle, Addr, Size, FreeType],
        ret: Some(Bool),
    },
    Sig {
        name: "VirtualProtect",
        params: &[Addr, Size, Protect, Out],
        ret: Some(Bool),
    },
    Sig {
        name: "VirtualProtectEx",
        params: &[Handle, Addr, Size, Protect, Out],
        ret: Some(Bool),
    },
    Sig {
        name: "VirtualProtectFromApp",
        params: &[Addr, Size, Protect, Out],
        ret: Some(Bool),
    },
    Sig {
        name: "VirtualQuery",
        params: &[Addr, Out, Size],
        ret: Some(Count),
    },
    Sig {
        name: "VirtualQueryEx",
        params: &[Handle, Addr, Out, Size],
        ret: Some(Count),
    },
    Sig {
        name: "VirtualLock",
        params: &[Addr, Size],
        ret: Some(Bool),
    },
    Sig {
        name: "VirtualUnlock",
        params: &[Addr, Size],
        ret: Some(Bool),
    },
    Sig {
        name: "VirtualUnlockEx",
        params: &[Handle, Addr, Size],
        ret: Some(Bool),
    },
    Sig {
        name: "GetWriteWatch",
        params: &[Flags, Addr, Size, Out, Out, Out],
        ret: Some(Count),
    },
    Sig {
        name: "ResetWriteWatch",
        params: &[Addr, Size],
        ret: Some(Count),
    },
    Sig {
        name: "GetSystemInfo",
        params: &[Out],
        ret: None,
    },
    Sig {
        name: "GetNativeSystemInfo",
        params: &[Out],
        ret: None,
    },
    Sig {
        name: "GetLargePageMinimum",
        params: &[],
        ret: Some(Size),
    },
    Sig {
        name: "GetLastError",
        params: &[],
        ret: Some(Error),
    },
    Sig {
        name: "SetLastError",
        params: &[Error],
        ret: None,
    },
    Sig {
        name: "GetCurrentProcess",
        params: &[],
        ret: Some(Handle),
    },
    Sig {
        name: "FlushInstructionCache",
        params: &[Handle, Addr, Size],
        ret: Some(Bool),
    },
    Sig {
        name: "DiscardVirtualMemory",
        params: &[Addr, Size],
        ret: Some(Error),
    },
    Sig {
        name: "OfferVirtualMemory",
        params: &[Addr, Size, Count],
        ret: Some(Error),
    },
    Sig {
        name: "ReclaimVirtualMemory",
        params: &[Addr, Size],
        ret: Some(Error),
    },
    Sig {
        name: "PrefetchVirtualMemory",
        params: &[Handle, Count, Out, Flags],
        ret: Some(Bool),
    },
    Sig {
        name: "AllocateUserPhysicalPages",
        params: &[Handle, Out, Out],
        ret: Some(Bool),
    },
    Sig {
        name: "AllocateUserPhysicalPagesNuma",
        params: &[Handle, Out, Out, Count],
        ret: Some(Bool),
    },
    Sig {
        name: "MapUserPhysicalPages",
        params: &[Addr, Count, Out],
        ret: Some(Bool),
    },
    Sig {
        name: "MapUserPhysicalPagesScatter",
        params: &[Out, Count, Out],
        ret: Some(Bool),
    },
    Sig {
        name: "FreeUserPhysicalPages",
        params: &[Handle, Out, Out],
        ret: Some(Bool),
    },
    Sig {
        name: "CreateFileMappingA",
        params: &[FileHandle, Addr, SecProtect, Size, Size, Str],
        ret: Some(Handle),
    },
    Sig {
        name: "CreateFileMappingW",
        params: &[FileHandle, Addr, SecProtect, Size, Size, Str],
        ret: Some(Handle),
    },
    Sig {
        name: "OpenFileMappingA",
        params: &[Access, Bool, Str],
        ret: Some(Handle),
    },
    Sig {
        name: "OpenFileMappingW",
        params: &[Access, Bool, Str],
        ret: Some(Handle),
    },
    Sig {
        name: "MapViewOfFile",
        params: &[Handle, Access, Size, Size, Size],
        ret: Some(Addr),
    },
    Sig {
        name: "MapViewOfFileEx",
        params: &[Handle, Access, Size, Size, Size, Addr],
        ret: Some(Addr),
    },
    Sig {
        name: "MapViewOfFile3",
        params: &[
            Handle, Handle, Addr, Size, Size, AllocType, Protect, Out, Count,
        ],
        ret: Some(Addr),
    },
    Sig {
        name: "UnmapViewOfFile",
        params: &[Addr],
        ret: Some(Bool),
    },
    Sig {
        name: "UnmapViewOfFileEx",
        params: &[Addr, FreeType],
        ret: Some(Bool),
    },
    Sig {
        name: "UnmapViewOfFile2",
        params: &[Handle, Addr, FreeType],
        ret: Some(Bool),
    },
    Sig {
        name: "FlushViewOfFile",
        params: &[Addr, Size],
        ret: Some(Bool),
    },
    Sig {
        name: "CloseHandle",
        params: &[Handle],
        ret: Some(Bool),
    },
    Sig {
        name: "DuplicateHandle",
        params: &[Handle, Handle, Handle, Out, Access, Bool, DupOptions],
        ret: Some(Bool),
    },
];

pub fn win32(name: &str) -> Option<&'static Sig> {
    WIN32.iter().find(|s| s.name == name)
}

/// The C library functions the language has.
pub const LIBC: &[&str] = &[
    "printf",
    "puts",
    "putchar",
    "memset",
    "memcpy",
    "memmove",
    "memcmp",
    "strcpy",
    "strncpy",
    "strlen",
    "strcmp",
    "strcat",
    "malloc",
    "calloc",
    "free",
    "exit",
    "abort",
    "Sleep",
    "system",
    "getchar",
    "_getch",
    "getch",
    "GetExceptionCode",
    "assert",
    "sprintf",
];

/// Protection names, for traces and maps: "PAGE_READWRITE", "PAGE_READONLY|PAGE_GUARD".
pub fn protect_name(p: u32) -> String {
    let base = match p & 0xFF {
        0 => "0",
        c::PAGE_NOACCESS => "PAGE_NOACCESS",
        c::PAGE_READONLY => "PAGE_READONLY",
        c::PAGE_READWRITE => "PAGE_READWRITE",
        c::PAGE_WRITECOPY => "PAGE_WRITECOPY",
        c::PAGE_EXECUTE => "PAGE_EXECUTE",
        c::PAGE_EXECUTE_READ => "PAGE_EXECUTE_READ",
        c::PAGE_EXECUTE_READWRITE => "PAGE_EXECUTE_READWRITE",
        c::PAGE_EXECUTE_WRITECOPY => "PAGE_EXECUTE_WRITECOPY",
        _ => "",
    };
    let mut parts: Vec<String> = Vec::new();
    if base.is_empty() {
        parts.push(format!("{:#x}", p & 0xFF));
    } else if base != "0" || p == 0 {
        parts.push(base.to_string());
    }
    for (bit, n) in [
        (c::PAGE_GUARD, "PAGE_GUARD"),
        (c::PAGE_NOCACHE, "PAGE_NOCACHE"),
        (c::PAGE_WRITECOMBINE, "PAGE_WRITECOMBINE"),
        (c::PAGE_TARGETS_INVALID, "PAGE_TARGETS_INVALID"),
    ] {
        if p & bit != 0 {
            parts.push(n.to_string());
        }
    }
    let rest = p & !(0xFF
        | c::PAGE_GUARD
        | c::PAGE_NOCACHE
        | c::PAGE_WRITECOMBINE
        | c::PAGE_TARGETS_INVALID);
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    parts.join("|")
}

/// A section's flProtect: "PAGE_READWRITE | SEC_RESERVE".
pub fn section_protect_name(p: u32) -> String {
    let sec = [
        (c::SEC_FILE, "SEC_FILE"),
        (c::SEC_IMAGE, "SEC_IMAGE"),
        (c::SEC_RESERVE, "SEC_RESERVE"),
        (c::SEC_COMMIT, "SEC_COMMIT"),
        (c::SEC_NOCACHE, "SEC_NOCACHE"),
        (c::SEC_WRITECOMBINE, "SEC_WRITECOMBINE"),
        (c::SEC_LARGE_PAGES, "SEC_LARGE_PAGES"),
    ];
    let bits = sec.iter().fold(0, |a, (b, _)| a | b);
    let mut parts = vec![protect_name(p & !bits)];
    parts.extend(
        sec.iter()
            .filter(|(b, _)| p & b != 0)
            .map(|(_, n)| n.to_string()),
    );
    parts.join(" | ")
}

/// FILE_MAP_* names of an access mask: "FILE_MAP_READ | FILE_MAP_WRITE".
pub fn access_name(v: u32) -> String {
    if v == c::FILE_MAP_ALL_ACCESS {
        return "FILE_MAP_ALL_ACCESS".into();
    }
    if v == 0 {
        return "0".into();
    }
    let names = [
        (c::FILE_MAP_COPY, "FILE_MAP_COPY"),
        (c::FILE_MAP_WRITE, "FILE_MAP_WRITE"),
        (c::FILE_MAP_READ, "FILE_MAP_READ"),
        (c::FILE_MAP_EXECUTE, "FILE_MAP_EXECUTE"),
        (c::FILE_MAP_LARGE_PAGES, "FILE_MAP_LARGE_PAGES"),
        (c::FILE_MAP_TARGETS_INVALID, "FILE_MAP_TARGETS_INVALID"),
        (c::FILE_MAP_RESERVE, "FILE_MAP_RESERVE"),
    ];
    flag_names(v, &names)
}

/// `v` as `NAME | NAME | 0x…` from a table of single-bit flags (unknown bits in hex).
fn flag_names(v: u32, names: &[(u32, &str)]) -> String {
    let mut parts = Vec::new();
    let mut rest = v;
    for &(bit, n) in names {
        if v & bit != 0 {
            parts.push(n.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    parts.join(" | ")
}

/// DUPLICATE_* option names.
pub fn dup_options_name(v: u32) -> String {
    match v {
        0 => "0".into(),
        1 => "DUPLICATE_CLOSE_SOURCE".into(),
        2 => "DUPLICATE_SAME_ACCESS".into(),
        3 => "DUPLICATE_CLOSE_SOURCE | DUPLICATE_SAME_ACCESS".into(),
        v => format!("{v:#x}"),
    }
}

/// MEM_* flag names of an allocation or free type.
pub fn mem_flags(v: u32, free: bool) -> String {
    if v == 0 {
        return "0".into();
    }
    let names: &[(u32, &str)] = if free {
        &[
            (c::MEM_DECOMMIT, "MEM_DECOMMIT"),
            (c::MEM_RELEASE, "MEM_RELEASE"),
            (c::MEM_PRESERVE_PLACEHOLDER, "MEM_PRESERVE_PLACEHOLDER"),
            (c::MEM_COALESCE_PLACEHOLDERS, "MEM_COALESCE_PLACEHOLDERS"),
        ]
    } else {
        &[
            (c::MEM_COMMIT, "MEM_COMMIT"),
            (c::MEM_RESERVE, "MEM_RESERVE"),
            (c::MEM_REPLACE_PLACEHOLDER, "MEM_REPLACE_PLACEHOLDER"),
            (c::MEM_RESERVE_PLACEHOLDER, "MEM_RESERVE_PLACEHOLDER"),
            (c::MEM_RESET, "MEM_RESET"),
            (c::MEM_RESET_UNDO, "MEM_RESET_UNDO"),
            (c::MEM_TOP_DOWN, "MEM_TOP_DOWN"),
            (c::MEM_WRITE_WATCH, "MEM_WRITE_WATCH"),
            (c::MEM_PHYSICAL, "MEM_PHYSICAL"),
            (c::MEM_LARGE_PAGES, "MEM_LARGE_PAGES"),
        ]
    };
    flag_names(v, names)
}

/// The name of a Win32 error code.
pub fn error_name(code: u32) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(n, v, k)| {
            n.starts_with("ERROR_") && matches!(k, K::D) && (*v & 0xFFFF_FFFF) as u32 == code
        })
        .map(|(n, _, _)| *n)
        .or(match code {
            0x8000_0001 => Some("STATUS_GUARD_PAGE_VIOLATION"),
            _ => None,
        })
}
