//! Win32 type aliases and numeric constants for the virtual-memory API.
//!
//! Names, types and values follow windows-sys 0.61 exactly (modules `Win32::Foundation`,
//! `Win32::System::Memory`, `Win32::System::SystemServices`,
//! `Win32::System::SystemInformation`), so code written against windows-sys compiles unchanged.
//! Items that are not windows-sys names say so in their doc comment.

#![allow(non_camel_case_types, non_upper_case_globals)]

// ---------------------------------------------------------------------------------------------
// Type aliases
// ---------------------------------------------------------------------------------------------

/// Win32 boolean (`windows_sys::core::BOOL`): zero is false, anything else is true.
pub type BOOL = i32;
/// Opaque kernel object handle (`Win32::Foundation::HANDLE`).
pub type HANDLE = *mut core::ffi::c_void;
/// Win32 error code as returned by `GetLastError` (`Win32::Foundation::WIN32_ERROR`).
pub type WIN32_ERROR = u32;
/// `flAllocationType` flags of `VirtualAlloc*`, also the `State` of a region.
pub type VIRTUAL_ALLOCATION_TYPE = u32;
/// `dwFreeType` flags of `VirtualFree*`.
pub type VIRTUAL_FREE_TYPE = u32;
/// Page protection flags (`PAGE_*`, also used for the `SEC_*` section attributes).
pub type PAGE_PROTECTION_FLAGS = u32;
/// The `Type` of a region in `MEMORY_BASIC_INFORMATION` (`MEM_PRIVATE`/`MEM_MAPPED`/`MEM_IMAGE`).
pub type PAGE_TYPE = u32;
/// Flags of `UnmapViewOfFile2`/`UnmapViewOfFileEx`.
pub type UNMAP_VIEW_OF_FILE_FLAGS = u32;
/// Access rights of a view (`Win32::System::Memory::FILE_MAP`).
pub type FILE_MAP = u32;
/// DuplicateHandle's options (`Win32::Foundation::DUPLICATE_HANDLE_OPTIONS`).
pub type DUPLICATE_HANDLE_OPTIONS = u32;
/// Kind of a `MEM_EXTENDED_PARAMETER` passed to `VirtualAlloc2`/`MapViewOfFile3`.
pub type MEM_EXTENDED_PARAMETER_TYPE = i32;
/// Processor architecture code in `SYSTEM_INFO` (`wProcessorArchitecture`).
pub type PROCESSOR_ARCHITECTURE = u16;
/// NT native status code; negative (high bit set) means an error or warning class.
pub type NTSTATUS = i32;

/// Win32 boolean true.
pub const TRUE: BOOL = 1;
/// Win32 boolean false.
pub const FALSE: BOOL = 0;

/// Pseudo-handle returned by `GetCurrentProcess` (-1); not a windows-sys name.
pub const CURRENT_PROCESS: HANDLE = -1isize as HANDLE;

// ---------------------------------------------------------------------------------------------
// Allocation types, free types, region states and region types
// ---------------------------------------------------------------------------------------------

/// Commit memory (back it with storage); also the `State` of a committed region.
pub const MEM_COMMIT: VIRTUAL_ALLOCATION_TYPE = 0x0000_1000;
/// Reserve address space without committing; also the `State` of a reserved region.
pub const MEM_RESERVE: VIRTUAL_ALLOCATION_TYPE = 0x0000_2000;
/// Replace a placeholder with a normal allocation or a mapped view (`VirtualAlloc2`).
pub const MEM_REPLACE_PLACEHOLDER: VIRTUAL_ALLOCATION_TYPE = 0x0000_4000;
/// Reserve a placeholder region that can later be split and replaced (`VirtualAlloc2`).
pub const MEM_RESERVE_PLACEHOLDER: VIRTUAL_ALLOCATION_TYPE = 0x0004_0000;
/// Mark committed pages as no longer of interest; contents may be discarded.
pub const MEM_RESET: VIRTUAL_ALLOCATION_TYPE = 0x0008_0000;
/// Undo an earlier `MEM_RESET` (SDK value 0x01000000, not Wine's 0x10000000).
pub const MEM_RESET_UNDO: VIRTUAL_ALLOCATION_TYPE = 0x0100_0000;
/// Allocate using large pages (requires `SeLockMemoryPrivilege`).
pub const MEM_LARGE_PAGES: VIRTUAL_ALLOCATION_TYPE = 0x2000_0000;
/// `State` of a free (unreserved) region in `MEMORY_BASIC_INFORMATION`.
pub const MEM_FREE: VIRTUAL_ALLOCATION_TYPE = 0x0001_0000;

/// Decommit pages but keep the address range reserved.
pub const MEM_DECOMMIT: VIRTUAL_FREE_TYPE = 0x0000_4000;
/// Release a whole reservation (size must be 0, address must be the allocation base).
pub const MEM_RELEASE: VIRTUAL_FREE_TYPE = 0x0000_8000;

/// Region `Type`: private (non-shared) memory.
pub const MEM_PRIVATE: PAGE_TYPE = 0x0002_0000;
/// Region `Type`: view of a mapped (data) section.
pub const MEM_MAPPED: PAGE_TYPE = 0x0004_0000;
/// Region `Type`: view of an image section (same value as `SEC_IMAGE`).
pub const MEM_IMAGE: PAGE_TYPE = 0x0100_0000;

/// Allocate at the highest possible address.
pub const MEM_TOP_DOWN: u32 = 0x0010_0000;
/// Track writes to the region so `GetWriteWatch` can report them.
pub const MEM_WRITE_WATCH: u32 = 0x0020_0000;
/// Reserve a range for Address Windowing Extensions (AWE) physical pages.
pub const MEM_PHYSICAL: u32 = 0x0040_0000;
/// Rotate physical pages (obsolete AWE flag).
pub const MEM_ROTATE: u32 = 0x0080_0000;
/// 4 MB pages (obsolete; unsupported by Windows).
pub const MEM_4MB_PAGES: u32 = 0x8000_0000;
/// `VirtualFree` with `MEM_RELEASE`: merge adjacent placeholders into one.
pub const MEM_COALESCE_PLACEHOLDERS: u32 = 0x0000_0001;
/// `VirtualFree` with `MEM_RELEASE`: split off a placeholder; unmap: leave a placeholder behind.
pub const MEM_PRESERVE_PLACEHOLDER: UNMAP_VIEW_OF_FILE_FLAGS = 0x0000_0002;
/// Unmap with a transient priority boost of the unmapped pages.
pub const MEM_UNMAP_WITH_TRANSIENT_BOOST: UNMAP_VIEW_OF_FILE_FLAGS = 0x0000_0001;
/// `GetWriteWatch` flag: reset the write-tracking state after reporting.
pub const WRITE_WATCH_FLAG_RESET: u32 = 0x0000_0001;
/// 64 KB pages (`MEM_LARGE_PAGES | MEM_PHYSICAL`); SDK winnt.h name, not in windows-sys.
pub const MEM_64K_PAGES: u32 = MEM_LARGE_PAGES | MEM_PHYSICAL;
/// Round the address/size of a mapping to page granularity; SDK name, not in windows-sys.
pub const AT_ROUND_TO_PAGE: u32 = 0x4000_0000;

// ---------------------------------------------------------------------------------------------
// Page protections
// ---------------------------------------------------------------------------------------------

/// No access; any access faults.
pub const PAGE_NOACCESS: PAGE_PROTECTION_FLAGS = 0x01;
/// Read-only access.
pub const PAGE_READONLY: PAGE_PROTECTION_FLAGS = 0x02;
/// Read and write access.
pub const PAGE_READWRITE: PAGE_PROTECTION_FLAGS = 0x04;
/// Copy-on-write access (mapped views only).
pub const PAGE_WRITECOPY: PAGE_PROTECTION_FLAGS = 0x08;
/// Execute-only access.
pub const PAGE_EXECUTE: PAGE_PROTECTION_FLAGS = 0x10;
/// Execute and read access.
pub const PAGE_EXECUTE_READ: PAGE_PROTECTION_FLAGS = 0x20;
/// Execute, read and write access.
pub const PAGE_EXECUTE_READWRITE: PAGE_PROTECTION_FLAGS = 0x40;
/// Execute and copy-on-write access (mapped views only).
pub const PAGE_EXECUTE_WRITECOPY: PAGE_PROTECTION_FLAGS = 0x80;
/// Guard-page modifier: first access raises `STATUS_GUARD_PAGE_VIOLATION` and clears it.
pub const PAGE_GUARD: PAGE_PROTECTION_FLAGS = 0x100;
/// Non-cacheable modifier.
pub const PAGE_NOCACHE: PAGE_PROTECTION_FLAGS = 0x200;
/// Write-combined modifier.
pub const PAGE_WRITECOMBINE: PAGE_PROTECTION_FLAGS = 0x400;
/// CFG: mark all locations in the pages as invalid call targets (allocation).
pub const PAGE_TARGETS_INVALID: PAGE_PROTECTION_FLAGS = 0x4000_0000;
/// CFG: do not update call-target information on protection change (same value).
pub const PAGE_TARGETS_NO_UPDATE: PAGE_PROTECTION_FLAGS = 0x4000_0000;

// ---------------------------------------------------------------------------------------------
// Section attributes (CreateFileMapping)
// ---------------------------------------------------------------------------------------------

/// Section backed by a file.
pub const SEC_FILE: PAGE_PROTECTION_FLAGS = 0x0080_0000;
/// Section is an executable image (same value as `MEM_IMAGE`).
pub const SEC_IMAGE: PAGE_PROTECTION_FLAGS = 0x0100_0000;
/// Section pages are reserved only, committed later with `VirtualAlloc`.
pub const SEC_RESERVE: PAGE_PROTECTION_FLAGS = 0x0400_0000;
/// Section pages are committed when the section is created (default).
pub const SEC_COMMIT: PAGE_PROTECTION_FLAGS = 0x0800_0000;
/// Section pages are non-cacheable.
pub const SEC_NOCACHE: PAGE_PROTECTION_FLAGS = 0x1000_0000;
/// Section pages are write-combined.
pub const SEC_WRITECOMBINE: PAGE_PROTECTION_FLAGS = 0x4000_0000;
/// Section uses large pages.
pub const SEC_LARGE_PAGES: PAGE_PROTECTION_FLAGS = 0x8000_0000;

// ---------------------------------------------------------------------------------------------
// Win32 error codes
// ---------------------------------------------------------------------------------------------

/// The operation completed successfully.
pub const ERROR_SUCCESS: WIN32_ERROR = 0;
/// ERROR_INTERNAL_ERROR: what a virtmem call that panicked internally reports.
pub const ERROR_INTERNAL_ERROR: WIN32_ERROR = 1359;
/// ERROR_BUSY: ReclaimVirtualMemory found discarded contents.
pub const ERROR_BUSY: WIN32_ERROR = 170;
/// Access is denied.
pub const ERROR_ACCESS_DENIED: WIN32_ERROR = 5;
/// The handle is invalid.
pub const ERROR_INVALID_HANDLE: WIN32_ERROR = 6;
/// Not enough memory resources are available to process this command.
pub const ERROR_NOT_ENOUGH_MEMORY: WIN32_ERROR = 8;
/// Not enough memory resources are available to complete this operation.
pub const ERROR_OUTOFMEMORY: WIN32_ERROR = 14;
/// The program issued a command but the command length is incorrect.
pub const ERROR_BAD_LENGTH: WIN32_ERROR = 24;
/// The request is not supported.
pub const ERROR_NOT_SUPPORTED: WIN32_ERROR = 50;
/// An unexpected network error occurred (what `STATUS_INVALID_ADDRESS` maps to).
pub const ERROR_UNEXP_NET_ERR: WIN32_ERROR = 59;
/// The parameter is incorrect.
pub const ERROR_INVALID_PARAMETER: WIN32_ERROR = 87;
/// This function is not supported on this system.
pub const ERROR_CALL_NOT_IMPLEMENTED: WIN32_ERROR = 120;
/// The segment is already unlocked.
pub const ERROR_NOT_LOCKED: WIN32_ERROR = 158;
/// Only part of a ReadProcessMemory or WriteProcessMemory request was completed.
pub const ERROR_PARTIAL_COPY: WIN32_ERROR = 299;
/// The message for this NTSTATUS could not be found (unknown status in the mapping table).
pub const ERROR_MR_MID_NOT_FOUND: WIN32_ERROR = 317;
/// Attempt to access invalid address.
pub const ERROR_INVALID_ADDRESS: WIN32_ERROR = 487;
/// Invalid access to memory location.
pub const ERROR_NOACCESS: WIN32_ERROR = 998;
/// Error performing inpage operation.
pub const ERROR_SWAPERROR: WIN32_ERROR = 999;
/// Recursion too deep; the stack overflowed.
pub const ERROR_STACK_OVERFLOW: WIN32_ERROR = 1001;
/// Invalid flags (not used by the virtual-memory APIs).
pub const ERROR_INVALID_FLAGS: WIN32_ERROR = 1004;
/// The base address or the file offset specified does not have the proper alignment.
pub const ERROR_MAPPED_ALIGNMENT: WIN32_ERROR = 1132;
/// A required privilege is not held by the client.
pub const ERROR_PRIVILEGE_NOT_HELD: WIN32_ERROR = 1314;
/// Insufficient system resources exist to complete the requested service.
pub const ERROR_NO_SYSTEM_RESOURCES: WIN32_ERROR = 1450;
/// Insufficient quota to complete the requested service (working set).
pub const ERROR_WORKING_SET_QUOTA: WIN32_ERROR = 1453;
/// The paging file is too small for this operation to complete.
pub const ERROR_COMMITMENT_LIMIT: WIN32_ERROR = 1455;
/// The supplied user buffer is not valid for the requested operation.
pub const ERROR_INVALID_USER_BUFFER: WIN32_ERROR = 1784;

// ---------------------------------------------------------------------------------------------
// NTSTATUS values
// ---------------------------------------------------------------------------------------------

/// The operation completed successfully.
pub const STATUS_SUCCESS: NTSTATUS = 0x00000000;
/// Success class: the working-set range was out of limits (Wine: size beyond address space).
pub const STATUS_WORKING_SET_LIMIT_RANGE: NTSTATUS = 0x40000002;
/// Success class: the pages were already locked (`VirtualLock` still succeeds).
pub const STATUS_WAS_LOCKED: NTSTATUS = 0x40000019;
/// Warning: a guard page was accessed (maps to itself as a Win32 error).
pub const STATUS_GUARD_PAGE_VIOLATION: NTSTATUS = 0x80000001_u32 as i32;
/// Warning: only part of a read/write-process-memory request completed.
pub const STATUS_PARTIAL_COPY: NTSTATUS = 0x8000000D_u32 as i32;
/// An invalid information class was specified.
pub const STATUS_INVALID_INFO_CLASS: NTSTATUS = 0xC0000003_u32 as i32;
/// The information buffer length does not match the class.
pub const STATUS_INFO_LENGTH_MISMATCH: NTSTATUS = 0xC0000004_u32 as i32;
/// Access violation (invalid memory access).
pub const STATUS_ACCESS_VIOLATION: NTSTATUS = 0xC0000005_u32 as i32;
/// An in-page I/O error occurred.
pub const STATUS_IN_PAGE_ERROR: NTSTATUS = 0xC0000006_u32 as i32;
/// An invalid handle was specified.
pub const STATUS_INVALID_HANDLE: NTSTATUS = 0xC0000008_u32 as i32;
/// An invalid parameter was passed.
pub const STATUS_INVALID_PARAMETER: NTSTATUS = 0xC000000D_u32 as i32;
/// Not enough virtual memory or paging file quota.
pub const STATUS_NO_MEMORY: NTSTATUS = 0xC0000017_u32 as i32;
/// The requested address range conflicts with an existing allocation.
pub const STATUS_CONFLICTING_ADDRESSES: NTSTATUS = 0xC0000018_u32 as i32;
/// The address is not the base of a mapped view.
pub const STATUS_NOT_MAPPED_VIEW: NTSTATUS = 0xC0000019_u32 as i32;
/// The virtual memory cannot be freed.
pub const STATUS_UNABLE_TO_FREE_VM: NTSTATUS = 0xC000001A_u32 as i32;
/// The section cannot be deleted.
pub const STATUS_UNABLE_TO_DELETE_SECTION: NTSTATUS = 0xC000001B_u32 as i32;
/// The view size is invalid.
pub const STATUS_INVALID_VIEW_SIZE: NTSTATUS = 0xC000001F_u32 as i32;
/// The address range is already committed.
pub const STATUS_ALREADY_COMMITTED: NTSTATUS = 0xC0000021_u32 as i32;
/// Access denied.
pub const STATUS_ACCESS_DENIED: NTSTATUS = 0xC0000022_u32 as i32;
/// The pages are not locked.
pub const STATUS_NOT_LOCKED: NTSTATUS = 0xC000002A_u32 as i32;
/// The virtual memory cannot be decommitted.
pub const STATUS_UNABLE_TO_DECOMMIT_VM: NTSTATUS = 0xC000002C_u32 as i32;
/// The pages are not committed.
pub const STATUS_NOT_COMMITTED: NTSTATUS = 0xC000002D_u32 as i32;
/// The section is too big for the file or the request.
pub const STATUS_SECTION_TOO_BIG: NTSTATUS = 0xC0000040_u32 as i32;
/// The page protection is invalid.
pub const STATUS_INVALID_PAGE_PROTECTION: NTSTATUS = 0xC0000045_u32 as i32;
/// The view protection is incompatible with the section's protection.
pub const STATUS_INCOMPATIBLE_FILE_MAP: NTSTATUS = 0xC000004D_u32 as i32;
/// A required privilege is not held.
pub const STATUS_PRIVILEGE_NOT_HELD: NTSTATUS = 0xC0000061_u32 as i32;
/// The range to unlock was not locked.
pub const STATUS_RANGE_NOT_LOCKED: NTSTATUS = 0xC000007E_u32 as i32;
/// The address to free is not the allocation base.
pub const STATUS_FREE_VM_NOT_AT_BASE: NTSTATUS = 0xC000009F_u32 as i32;
/// The memory to free is not allocated.
pub const STATUS_MEMORY_NOT_ALLOCATED: NTSTATUS = 0xC00000A0_u32 as i32;
/// The working-set quota is exceeded.
pub const STATUS_WORKING_SET_QUOTA: NTSTATUS = 0xC00000A1_u32 as i32;
/// The request is not supported.
pub const STATUS_NOT_SUPPORTED: NTSTATUS = 0xC00000BB_u32 as i32;
/// The first parameter is invalid.
pub const STATUS_INVALID_PARAMETER_1: NTSTATUS = 0xC00000EF_u32 as i32;
/// The second parameter is invalid.
pub const STATUS_INVALID_PARAMETER_2: NTSTATUS = 0xC00000F0_u32 as i32;
/// The third parameter is invalid.
pub const STATUS_INVALID_PARAMETER_3: NTSTATUS = 0xC00000F1_u32 as i32;
/// The fourth parameter is invalid.
pub const STATUS_INVALID_PARAMETER_4: NTSTATUS = 0xC00000F2_u32 as i32;
/// The fifth parameter is invalid.
pub const STATUS_INVALID_PARAMETER_5: NTSTATUS = 0xC00000F3_u32 as i32;
/// The sixth parameter is invalid.
pub const STATUS_INVALID_PARAMETER_6: NTSTATUS = 0xC00000F4_u32 as i32;
/// The seventh parameter is invalid.
pub const STATUS_INVALID_PARAMETER_7: NTSTATUS = 0xC00000F5_u32 as i32;
/// The eighth parameter is invalid.
pub const STATUS_INVALID_PARAMETER_8: NTSTATUS = 0xC00000F6_u32 as i32;
/// The ninth parameter is invalid.
pub const STATUS_INVALID_PARAMETER_9: NTSTATUS = 0xC00000F7_u32 as i32;
/// The tenth parameter is invalid.
pub const STATUS_INVALID_PARAMETER_10: NTSTATUS = 0xC00000F8_u32 as i32;
/// The eleventh parameter is invalid.
pub const STATUS_INVALID_PARAMETER_11: NTSTATUS = 0xC00000F9_u32 as i32;
/// The twelfth parameter is invalid.
pub const STATUS_INVALID_PARAMETER_12: NTSTATUS = 0xC00000FA_u32 as i32;
/// The stack overflowed.
pub const STATUS_STACK_OVERFLOW: NTSTATUS = 0xC00000FD_u32 as i32;
/// The commit limit (paging file) is exhausted.
pub const STATUS_COMMITMENT_LIMIT: NTSTATUS = 0xC000012D_u32 as i32;
/// The address is invalid (maps to `ERROR_UNEXP_NET_ERR`, not 487).
pub const STATUS_INVALID_ADDRESS: NTSTATUS = 0xC0000141_u32 as i32;
/// The base address or file offset is not properly aligned.
pub const STATUS_MAPPED_ALIGNMENT: NTSTATUS = 0xC0000220_u32 as i32;

// ---- The NT layer (win32/nt): further statuses, the Win32 codes they map to, and the ------
// ---- NtQueryVirtualMemory / NtLockVirtualMemory / NtMapViewOfSection vocabulary. ----------
// Values from windows-sys 0.61 `Win32::Foundation` unless a comment names another source.

/// Success, informational: the object name existed and the call opened it (OBJ_OPENIF).
pub const STATUS_OBJECT_NAME_EXISTS: NTSTATUS = 0x40000000;
/// Success, informational: NtUnlockVirtualMemory's "the pages were unlocked" code.
pub const STATUS_WAS_UNLOCKED: NTSTATUS = 0x40000017;
/// Warning: the buffer was too small for the whole answer (the needed length is returned).
pub const STATUS_BUFFER_OVERFLOW: NTSTATUS = 0x80000005_u32 as i32;
/// The operation failed (no more specific status).
pub const STATUS_UNSUCCESSFUL: NTSTATUS = 0xC0000001_u32 as i32;
/// The requested operation is not implemented.
pub const STATUS_NOT_IMPLEMENTED: NTSTATUS = 0xC0000002_u32 as i32;
/// The buffer is too small.
pub const STATUS_BUFFER_TOO_SMALL: NTSTATUS = 0xC0000023_u32 as i32;
/// The handle is of the wrong object type.
pub const STATUS_OBJECT_TYPE_MISMATCH: NTSTATUS = 0xC0000024_u32 as i32;
/// No object of that name.
pub const STATUS_OBJECT_NAME_NOT_FOUND: NTSTATUS = 0xC0000034_u32 as i32;
/// An object of that name exists (and OBJ_OPENIF was not given).
pub const STATUS_OBJECT_NAME_COLLISION: NTSTATUS = 0xC0000035_u32 as i32;
/// A directory of the object path does not exist.
pub const STATUS_OBJECT_PATH_NOT_FOUND: NTSTATUS = 0xC000003A_u32 as i32;
/// Another handle's share mode forbids this access.
pub const STATUS_SHARING_VIOLATION: NTSTATUS = 0xC0000043_u32 as i32;
/// The image file is not a valid executable.
pub const STATUS_INVALID_IMAGE_FORMAT: NTSTATUS = 0xC000007B_u32 as i32;
/// The disk is full.
pub const STATUS_DISK_FULL: NTSTATUS = 0xC000007F_u32 as i32;
/// The file (object) is invalid: a view of a section that has no file.
pub const STATUS_FILE_INVALID: NTSTATUS = 0xC0000098_u32 as i32;
/// Insufficient system resources.
pub const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = 0xC000009A_u32 as i32;
/// NtAreMappedFilesTheSame: the two addresses do not map the same file.
pub const STATUS_NOT_SAME_DEVICE: NTSTATUS = 0xC00000D4_u32 as i32;
/// An internal error (a panic inside an NT function).
pub const STATUS_INTERNAL_ERROR: NTSTATUS = 0xC00000E5_u32 as i32;
/// A name is too long.
pub const STATUS_NAME_TOO_LONG: NTSTATUS = 0xC0000106_u32 as i32;
/// A section of an empty file with size 0 cannot be made.
pub const STATUS_MAPPED_FILE_SIZE_ZERO: NTSTATUS = 0xC000011E_u32 as i32;
/// The file has a user-mapped section (shrinking it, MEM_RESET on a file view).
pub const STATUS_USER_MAPPED_FILE: NTSTATUS = 0xC0000243_u32 as i32;

/// Incorrect function (what STATUS_NOT_IMPLEMENTED maps to).
pub const ERROR_INVALID_FUNCTION: WIN32_ERROR = 1;
/// The system cannot move the file to a different disk drive (STATUS_NOT_SAME_DEVICE).
pub const ERROR_NOT_SAME_DEVICE: WIN32_ERROR = 17;
/// More data is available (STATUS_BUFFER_OVERFLOW).
pub const ERROR_MORE_DATA: WIN32_ERROR = 234;
/// The pages were unlocked (STATUS_WAS_UNLOCKED).
pub const ERROR_WAS_UNLOCKED: WIN32_ERROR = 715;
/// The pages were already locked (STATUS_WAS_LOCKED).
pub const ERROR_WAS_LOCKED: WIN32_ERROR = 717;

/// `OBJECT_ATTRIBUTES.Attributes`: names compare case-insensitively.
pub const OBJ_CASE_INSENSITIVE: u32 = 0x40;
/// `OBJECT_ATTRIBUTES.Attributes`: open the object if the name exists (else the create fails).
pub const OBJ_OPENIF: u32 = 0x80;

/// `MEMORY_INFORMATION_CLASS` (windows-sys `Wdk::Storage::FileSystem`).
pub type MEMORY_INFORMATION_CLASS = i32;
/// NtQueryVirtualMemory: a MEMORY_BASIC_INFORMATION.
pub const MemoryBasicInformation: MEMORY_INFORMATION_CLASS = 0;
/// NtQueryVirtualMemory: the working set (MEMORY_WORKING_SET_INFORMATION, the layout of
/// PSAPI_WORKING_SET_INFORMATION). Value from the WDK's `ntifs.h` enumeration.
pub const MemoryWorkingSetInformation: MEMORY_INFORMATION_CLASS = 1;
/// NtQueryVirtualMemory: the mapped file's name (a UNICODE_STRING and its buffer). `ntifs.h`.
pub const MemoryMappedFilenameInformation: MEMORY_INFORMATION_CLASS = 2;
/// NtQueryVirtualMemory: the whole allocation (MEMORY_REGION_INFORMATION). `ntifs.h`.
pub const MemoryRegionInformation: MEMORY_INFORMATION_CLASS = 3;
/// NtQueryVirtualMemory: per-page working-set attributes (MEMORY_WORKING_SET_EX_INFORMATION,
/// the layout of PSAPI_WORKING_SET_EX_INFORMATION). `ntifs.h`.
pub const MemoryWorkingSetExInformation: MEMORY_INFORMATION_CLASS = 4;

/// NtLockVirtualMemory: lock the pages in the working set (VirtualLock). WDK `ntddk.h`.
pub const MAP_PROCESS: u32 = 1;
/// NtLockVirtualMemory: lock the pages in physical memory (needs SeLockMemoryPrivilege).
/// WDK `ntddk.h`.
pub const MAP_SYSTEM: u32 = 2;

/// `SECTION_INHERIT` (windows-sys `Wdk::System::Memory`).
pub type SECTION_INHERIT = i32;
/// NtMapViewOfSection: the view is inherited by child processes.
pub const ViewShare: SECTION_INHERIT = 1;
/// NtMapViewOfSection: the view is not inherited.
pub const ViewUnmap: SECTION_INHERIT = 2;
// ---- end of the NT layer's block -------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Access-violation kinds (EXCEPTION_RECORD.ExceptionInformation[0])
// ---------------------------------------------------------------------------------------------

/// The faulting access was a read.
pub const EXCEPTION_READ_FAULT: u32 = 0;
/// The faulting access was a write.
pub const EXCEPTION_WRITE_FAULT: u32 = 1;
/// The faulting access was an instruction fetch (DEP violation).
pub const EXCEPTION_EXECUTE_FAULT: u32 = 8;

// ---------------------------------------------------------------------------------------------
// Processor architectures and types (SYSTEM_INFO)
// ---------------------------------------------------------------------------------------------

/// x86 (32-bit Intel) architecture.
pub const PROCESSOR_ARCHITECTURE_INTEL: PROCESSOR_ARCHITECTURE = 0;
/// 32-bit ARM architecture.
pub const PROCESSOR_ARCHITECTURE_ARM: PROCESSOR_ARCHITECTURE = 5;
/// Intel Itanium architecture.
pub const PROCESSOR_ARCHITECTURE_IA64: PROCESSOR_ARCHITECTURE = 6;
/// x64 (AMD or Intel) architecture.
pub const PROCESSOR_ARCHITECTURE_AMD64: PROCESSOR_ARCHITECTURE = 9;
/// x86 process running on 64-bit Windows (WOW64).
pub const PROCESSOR_ARCHITECTURE_IA32_ON_WIN64: PROCESSOR_ARCHITECTURE = 10;
/// 64-bit ARM architecture.
pub const PROCESSOR_ARCHITECTURE_ARM64: PROCESSOR_ARCHITECTURE = 12;
/// Unknown architecture.
pub const PROCESSOR_ARCHITECTURE_UNKNOWN: PROCESSOR_ARCHITECTURE = 0xFFFF;

/// `dwProcessorType` of an Intel 386.
pub const PROCESSOR_INTEL_386: u32 = 386;
/// `dwProcessorType` of an Intel 486.
pub const PROCESSOR_INTEL_486: u32 = 486;
/// `dwProcessorType` of an Intel Pentium (also reported for modern 32-bit x86).
pub const PROCESSOR_INTEL_PENTIUM: u32 = 586;
/// `dwProcessorType` of an Intel Itanium.
pub const PROCESSOR_INTEL_IA64: u32 = 2200;
/// `dwProcessorType` of an x64 processor.
pub const PROCESSOR_AMD_X8664: u32 = 8664;

// ---------------------------------------------------------------------------------------------
// MEM_EXTENDED_PARAMETER types
// ---------------------------------------------------------------------------------------------

/// Invalid (unused) extended parameter.
pub const MemExtendedParameterInvalidType: MEM_EXTENDED_PARAMETER_TYPE = 0;
/// `Pointer` points to a `MEM_ADDRESS_REQUIREMENTS`.
pub const MemExtendedParameterAddressRequirements: MEM_EXTENDED_PARAMETER_TYPE = 1;
/// `ULong` is the preferred NUMA node.
pub const MemExtendedParameterNumaNode: MEM_EXTENDED_PARAMETER_TYPE = 2;
/// `Handle` is a memory partition handle.
pub const MemExtendedParameterPartitionHandle: MEM_EXTENDED_PARAMETER_TYPE = 3;
/// `Handle` is a user physical-pages handle.
pub const MemExtendedParameterUserPhysicalHandle: MEM_EXTENDED_PARAMETER_TYPE = 4;
/// `ULong64` holds `MEM_EXTENDED_PARAMETER_*` attribute flags.
pub const MemExtendedParameterAttributeFlags: MEM_EXTENDED_PARAMETER_TYPE = 5;
/// `ULong` is the image machine type (for image sections).
pub const MemExtendedParameterImageMachine: MEM_EXTENDED_PARAMETER_TYPE = 6;
/// One past the last valid extended parameter type.
pub const MemExtendedParameterMax: MEM_EXTENDED_PARAMETER_TYPE = 7;

// ---- Sections (file mapping objects) ----

/// FILE_MAP_COPY (= SECTION_QUERY): a copy-on-write view.
pub const FILE_MAP_COPY: FILE_MAP = 0x0001;
/// FILE_MAP_WRITE (= SECTION_MAP_WRITE).
pub const FILE_MAP_WRITE: FILE_MAP = 0x0002;
/// FILE_MAP_READ (= SECTION_MAP_READ).
pub const FILE_MAP_READ: FILE_MAP = 0x0004;
/// FILE_MAP_EXECUTE (= SECTION_MAP_EXECUTE_EXPLICIT).
pub const FILE_MAP_EXECUTE: FILE_MAP = 0x0020;
/// FILE_MAP_ALL_ACCESS (= SECTION_ALL_ACCESS).
pub const FILE_MAP_ALL_ACCESS: FILE_MAP = 0x000F_001F;
/// FILE_MAP_LARGE_PAGES: a view of a large-page section.
pub const FILE_MAP_LARGE_PAGES: FILE_MAP = 0x2000_0000;
/// FILE_MAP_TARGETS_INVALID: Control Flow Guard targets (no effect here).
pub const FILE_MAP_TARGETS_INVALID: FILE_MAP = 0x4000_0000;
/// FILE_MAP_RESERVE: a reserved view.
pub const FILE_MAP_RESERVE: FILE_MAP = 0x8000_0000;
/// SECTION_QUERY.
pub const SECTION_QUERY: u32 = 0x0001;
/// SECTION_MAP_WRITE.
pub const SECTION_MAP_WRITE: u32 = 0x0002;
/// SECTION_MAP_READ.
pub const SECTION_MAP_READ: u32 = 0x0004;
/// SECTION_MAP_EXECUTE.
pub const SECTION_MAP_EXECUTE: u32 = 0x0008;
/// SECTION_EXTEND_SIZE.
pub const SECTION_EXTEND_SIZE: u32 = 0x0010;
/// SECTION_MAP_EXECUTE_EXPLICIT.
pub const SECTION_MAP_EXECUTE_EXPLICIT: u32 = 0x0020;
/// SECTION_ALL_ACCESS.
pub const SECTION_ALL_ACCESS: u32 = 0x000F_001F;
/// SEC_IMAGE_NO_EXECUTE.
pub const SEC_IMAGE_NO_EXECUTE: PAGE_PROTECTION_FLAGS = 0x1100_0000;
/// DUPLICATE_CLOSE_SOURCE.
pub const DUPLICATE_CLOSE_SOURCE: DUPLICATE_HANDLE_OPTIONS = 0x0000_0001;
/// DUPLICATE_SAME_ACCESS.
pub const DUPLICATE_SAME_ACCESS: DUPLICATE_HANDLE_OPTIONS = 0x0000_0002;
/// NUMA_NO_PREFERRED_NODE.
pub const NUMA_NO_PREFERRED_NODE: u32 = 0xFFFF_FFFF;
/// ERROR_BAD_EXE_FORMAT.
pub const ERROR_BAD_EXE_FORMAT: WIN32_ERROR = 193;
/// ERROR_FILE_INVALID.
pub const ERROR_FILE_INVALID: WIN32_ERROR = 1006;
// ---------------------------------------------------------------------------------------------
// Files (the minimal file API of sections.md §17): `Win32::Storage::FileSystem`,
// `Win32::Foundation`, `Win32::System::SystemServices` and `windows_sys::core`
// ---------------------------------------------------------------------------------------------

/// A NUL-terminated 8-bit string (`windows_sys::core::PCSTR`); virtmem reads it as UTF-8.
pub type PCSTR = *const u8;
/// A NUL-terminated UTF-16 string (`windows_sys::core::PCWSTR`).
pub type PCWSTR = *const u16;
/// An 8-bit string buffer to write (`windows_sys::core::PSTR`).
pub type PSTR = *mut u8;
/// A UTF-16 string buffer to write (`windows_sys::core::PWSTR`).
pub type PWSTR = *mut u16;
/// A procedure address (`windows_sys::Win32::Foundation::FARPROC`), as IsBadCodePtr takes it.
pub type FARPROC = Option<unsafe extern "system" fn() -> isize>;
/// Generic access rights (`GENERIC_*`), mapped onto the `FILE_*` rights of a file.
pub type GENERIC_ACCESS_RIGHTS = u32;
/// Specific and standard access rights of a file (`FILE_*`, `DELETE`, ...).
pub type FILE_ACCESS_RIGHTS = u32;
/// `dwShareMode` of `CreateFile*` (`FILE_SHARE_*`).
pub type FILE_SHARE_MODE = u32;
/// `dwCreationDisposition` of `CreateFile*`.
pub type FILE_CREATION_DISPOSITION = u32;
/// `dwFlagsAndAttributes` of `CreateFile*` (`FILE_ATTRIBUTE_*` and `FILE_FLAG_*`).
pub type FILE_FLAGS_AND_ATTRIBUTES = u32;
/// `dwMoveMethod` of `SetFilePointer*`.
pub type SET_FILE_POINTER_MOVE_METHOD = u32;

/// Read access (maps to `FILE_GENERIC_READ`).
pub const GENERIC_READ: GENERIC_ACCESS_RIGHTS = 0x8000_0000;
/// Write access (maps to `FILE_GENERIC_WRITE`).
pub const GENERIC_WRITE: GENERIC_ACCESS_RIGHTS = 0x4000_0000;
/// Execute access (maps to `FILE_GENERIC_EXECUTE`).
pub const GENERIC_EXECUTE: GENERIC_ACCESS_RIGHTS = 0x2000_0000;
/// All access (maps to `FILE_ALL_ACCESS`).
pub const GENERIC_ALL: GENERIC_ACCESS_RIGHTS = 0x1000_0000;

/// Read the file's data.
pub const FILE_READ_DATA: FILE_ACCESS_RIGHTS = 0x0001;
/// Write the file's data.
pub const FILE_WRITE_DATA: FILE_ACCESS_RIGHTS = 0x0002;
/// Append data to the file (writes go to its end).
pub const FILE_APPEND_DATA: FILE_ACCESS_RIGHTS = 0x0004;
/// Read extended attributes.
pub const FILE_READ_EA: FILE_ACCESS_RIGHTS = 0x0008;
/// Write extended attributes.
pub const FILE_WRITE_EA: FILE_ACCESS_RIGHTS = 0x0010;
/// Execute the file (map it for execution).
pub const FILE_EXECUTE: FILE_ACCESS_RIGHTS = 0x0020;
/// Read the file's attributes.
pub const FILE_READ_ATTRIBUTES: FILE_ACCESS_RIGHTS = 0x0080;
/// Change the file's attributes.
pub const FILE_WRITE_ATTRIBUTES: FILE_ACCESS_RIGHTS = 0x0100;
/// Delete the object (standard right).
pub const DELETE: FILE_ACCESS_RIGHTS = 0x0001_0000;
/// Read the security descriptor (standard right).
pub const READ_CONTROL: FILE_ACCESS_RIGHTS = 0x0002_0000;
/// Change the DACL (standard right).
pub const WRITE_DAC: FILE_ACCESS_RIGHTS = 0x0004_0000;
/// Change the owner (standard right).
pub const WRITE_OWNER: FILE_ACCESS_RIGHTS = 0x0008_0000;
/// Wait on the object (standard right).
pub const SYNCHRONIZE: FILE_ACCESS_RIGHTS = 0x0010_0000;
/// `DELETE | READ_CONTROL | WRITE_DAC | WRITE_OWNER`.
pub const STANDARD_RIGHTS_REQUIRED: FILE_ACCESS_RIGHTS = 0x000F_0000;
/// What `GENERIC_READ` means for a file.
pub const FILE_GENERIC_READ: FILE_ACCESS_RIGHTS = 0x0012_0089;
/// What `GENERIC_WRITE` means for a file.
pub const FILE_GENERIC_WRITE: FILE_ACCESS_RIGHTS = 0x0012_0116;
/// What `GENERIC_EXECUTE` means for a file.
pub const FILE_GENERIC_EXECUTE: FILE_ACCESS_RIGHTS = 0x0012_00A0;
/// Every right on a file (what `GENERIC_ALL` means for a file).
pub const FILE_ALL_ACCESS: FILE_ACCESS_RIGHTS = 0x001F_01FF;

/// Share nothing: later opens of the file fail while this handle is open.
pub const FILE_SHARE_NONE: FILE_SHARE_MODE = 0;
/// Later opens may read.
pub const FILE_SHARE_READ: FILE_SHARE_MODE = 1;
/// Later opens may write.
pub const FILE_SHARE_WRITE: FILE_SHARE_MODE = 2;
/// Later opens may delete.
pub const FILE_SHARE_DELETE: FILE_SHARE_MODE = 4;

/// Create the file; fail with ERROR_FILE_EXISTS if it exists.
pub const CREATE_NEW: FILE_CREATION_DISPOSITION = 1;
/// Create the file, truncating an existing one (last error ERROR_ALREADY_EXISTS).
pub const CREATE_ALWAYS: FILE_CREATION_DISPOSITION = 2;
/// Open the file; fail with ERROR_FILE_NOT_FOUND if it is missing.
pub const OPEN_EXISTING: FILE_CREATION_DISPOSITION = 3;
/// Open the file, creating a missing one (last error ERROR_ALREADY_EXISTS if it existed).
pub const OPEN_ALWAYS: FILE_CREATION_DISPOSITION = 4;
/// Open the file and truncate it to 0 bytes; needs `GENERIC_WRITE`.
pub const TRUNCATE_EXISTING: FILE_CREATION_DISPOSITION = 5;

/// The file is read-only.
pub const FILE_ATTRIBUTE_READONLY: FILE_FLAGS_AND_ATTRIBUTES = 0x0000_0001;
/// No other attributes.
pub const FILE_ATTRIBUTE_NORMAL: FILE_FLAGS_AND_ATTRIBUTES = 0x0000_0080;
/// The file is temporary (a caching hint).
pub const FILE_ATTRIBUTE_TEMPORARY: FILE_FLAGS_AND_ATTRIBUTES = 0x0000_0100;
/// Delete the file when its last handle is closed.
pub const FILE_FLAG_DELETE_ON_CLOSE: FILE_FLAGS_AND_ATTRIBUTES = 0x0400_0000;

/// Move the file pointer relative to the start of the file.
pub const FILE_BEGIN: SET_FILE_POINTER_MOVE_METHOD = 0;
/// Move the file pointer relative to its current position.
pub const FILE_CURRENT: SET_FILE_POINTER_MOVE_METHOD = 1;
/// Move the file pointer relative to the end of the file.
pub const FILE_END: SET_FILE_POINTER_MOVE_METHOD = 2;

/// What `CreateFile*` returns on failure (-1, the same value as `GetCurrentProcess()`).
pub const INVALID_HANDLE_VALUE: HANDLE = -1isize as HANDLE;
/// What `SetFilePointer` returns on failure (also a valid low DWORD: check the last error).
pub const INVALID_SET_FILE_POINTER: u32 = 0xFFFF_FFFF;
/// What `GetFileSize` returns on failure (also a valid low DWORD: check the last error).
pub const INVALID_FILE_SIZE: u32 = 0xFFFF_FFFF;
/// The classic path length limit, in characters including the NUL (GetTempFileName's buffer).
pub const MAX_PATH: u32 = 260;

/// No error (the same value as `ERROR_SUCCESS`).
pub const NO_ERROR: WIN32_ERROR = 0;
/// The system cannot find the file specified.
pub const ERROR_FILE_NOT_FOUND: WIN32_ERROR = 2;
/// The system cannot find the path specified (a missing directory).
pub const ERROR_PATH_NOT_FOUND: WIN32_ERROR = 3;
/// The system cannot open the file (too many open files).
pub const ERROR_TOO_MANY_OPEN_FILES: WIN32_ERROR = 4;
/// The media is write protected (a read-only file system).
pub const ERROR_WRITE_PROTECT: WIN32_ERROR = 19;
/// A device attached to the system is not functioning (virtmem: an unexpected errno).
pub const ERROR_GEN_FAILURE: WIN32_ERROR = 31;
/// The file is being used by another handle whose share mode forbids this access.
pub const ERROR_SHARING_VIOLATION: WIN32_ERROR = 32;
/// Another process has locked a portion of the file.
pub const ERROR_LOCK_VIOLATION: WIN32_ERROR = 33;
/// The file exists (CREATE_NEW).
pub const ERROR_FILE_EXISTS: WIN32_ERROR = 80;
/// The file name is too long (GetTempFileName: the directory is longer than MAX_PATH - 14).
pub const ERROR_BUFFER_OVERFLOW: WIN32_ERROR = 111;
/// There is not enough space on the disk.
pub const ERROR_DISK_FULL: WIN32_ERROR = 112;
/// An attempt was made to move the file pointer before the beginning of the file.
pub const ERROR_NEGATIVE_SEEK: WIN32_ERROR = 131;
/// The file name, directory name, or volume label syntax is incorrect.
pub const ERROR_INVALID_NAME: WIN32_ERROR = 123;
/// Cannot create a file when that file already exists (also set on some successes).
pub const ERROR_ALREADY_EXISTS: WIN32_ERROR = 183;
/// The file name or extension is too long.
pub const ERROR_FILENAME_EXCED_RANGE: WIN32_ERROR = 206;
/// The I/O request failed because of a device error.
pub const ERROR_IO_DEVICE: WIN32_ERROR = 1117;
/// The operation cannot be performed on a file with a user-mapped section open.
pub const ERROR_USER_MAPPED_FILE: WIN32_ERROR = 1224;
/// The name of the file cannot be resolved by the system (a symbolic link loop).
pub const ERROR_CANT_RESOLVE_FILENAME: WIN32_ERROR = 1921;

// --- Process memory status, working set, resource notifications, DEP (issue 15 item 2). ---
// Values and types as in windows-sys 0.61.

/// The data area passed to a system call is too small (GetProcessMemoryInfo's `cb`).
pub const ERROR_INSUFFICIENT_BUFFER: WIN32_ERROR = 122;
/// SetProcessWorkingSetSizeEx: the working set may fall below the minimum when memory is
/// short (Windows' default).
pub const QUOTA_LIMITS_HARDWS_MIN_DISABLE: u32 = 0x2;
/// SetProcessWorkingSetSizeEx: the working set never falls below the minimum.
pub const QUOTA_LIMITS_HARDWS_MIN_ENABLE: u32 = 0x1;
/// SetProcessWorkingSetSizeEx: the working set may exceed the maximum when memory is
/// plentiful (Windows' default).
pub const QUOTA_LIMITS_HARDWS_MAX_DISABLE: u32 = 0x8;
/// SetProcessWorkingSetSizeEx: the working set never exceeds the maximum.
pub const QUOTA_LIMITS_HARDWS_MAX_ENABLE: u32 = 0x4;
/// The flags type of SetProcessWorkingSetSizeEx.
pub type SETPROCESSWORKINGSETSIZEEX_FLAGS = u32;
/// The type of CreateMemoryResourceNotification's argument.
pub type MEMORY_RESOURCE_NOTIFICATION_TYPE = i32;
/// Signalled when available physical memory is low.
pub const LowMemoryResourceNotification: MEMORY_RESOURCE_NOTIFICATION_TYPE = 0;
/// Signalled when available physical memory is high.
pub const HighMemoryResourceNotification: MEMORY_RESOURCE_NOTIFICATION_TYPE = 1;
/// GetSystemDEPPolicy's result type.
pub type DEP_SYSTEM_POLICY_TYPE = i32;
/// DEP is off for the whole system.
pub const DEPPolicyAlwaysOff: DEP_SYSTEM_POLICY_TYPE = 0;
/// DEP is on for every process; none can opt out.
pub const DEPPolicyAlwaysOn: DEP_SYSTEM_POLICY_TYPE = 1;
/// DEP is on only for processes that opt in.
pub const DEPPolicyOptIn: DEP_SYSTEM_POLICY_TYPE = 2;
/// DEP is on for every process except those that opt out.
pub const DEPPolicyOptOut: DEP_SYSTEM_POLICY_TYPE = 3;
/// The number of DEP system policies.
pub const DEPTotalPolicyCount: DEP_SYSTEM_POLICY_TYPE = 4;
/// The flags type of Get/SetProcessDEPPolicy.
pub type PROCESS_DEP_FLAGS = u32;
/// DEP is enabled for the process.
pub const PROCESS_DEP_ENABLE: PROCESS_DEP_FLAGS = 0x1;
/// DEP-ATL thunk emulation is disabled for the process.
pub const PROCESS_DEP_DISABLE_ATL_THUNK_EMULATION: PROCESS_DEP_FLAGS = 0x2;
/// No DEP flags.
pub const PROCESS_DEP_NONE: PROCESS_DEP_FLAGS = 0x0;
// ---------------------------------------------------------------------------------------------
// Processes (OpenProcess, ReadProcessMemory, ...): windows-sys `Win32::System::Threading`
// ---------------------------------------------------------------------------------------------

/// Access rights of a process handle (`PROCESS_*`).
pub type PROCESS_ACCESS_RIGHTS = u32;
/// Terminate the process.
pub const PROCESS_TERMINATE: PROCESS_ACCESS_RIGHTS = 0x0001;
/// Create a thread in the process.
pub const PROCESS_CREATE_THREAD: PROCESS_ACCESS_RIGHTS = 0x0002;
/// Set the session id.
pub const PROCESS_SET_SESSIONID: PROCESS_ACCESS_RIGHTS = 0x0004;
/// Change the address space (VirtualAllocEx, VirtualProtectEx, WriteProcessMemory, ...).
pub const PROCESS_VM_OPERATION: PROCESS_ACCESS_RIGHTS = 0x0008;
/// Read the process's memory (ReadProcessMemory).
pub const PROCESS_VM_READ: PROCESS_ACCESS_RIGHTS = 0x0010;
/// Write the process's memory (WriteProcessMemory, with PROCESS_VM_OPERATION).
pub const PROCESS_VM_WRITE: PROCESS_ACCESS_RIGHTS = 0x0020;
/// Duplicate handles of or into the process.
pub const PROCESS_DUP_HANDLE: PROCESS_ACCESS_RIGHTS = 0x0040;
/// Create a process with this one as parent.
pub const PROCESS_CREATE_PROCESS: PROCESS_ACCESS_RIGHTS = 0x0080;
/// Set memory quotas.
pub const PROCESS_SET_QUOTA: PROCESS_ACCESS_RIGHTS = 0x0100;
/// Set information (priority class, ...).
pub const PROCESS_SET_INFORMATION: PROCESS_ACCESS_RIGHTS = 0x0200;
/// Query information (VirtualQueryEx, tokens, ...); implies the limited right.
pub const PROCESS_QUERY_INFORMATION: PROCESS_ACCESS_RIGHTS = 0x0400;
/// Suspend or resume the process.
pub const PROCESS_SUSPEND_RESUME: PROCESS_ACCESS_RIGHTS = 0x0800;
/// Query some information (GetProcessId, exit code, ...).
pub const PROCESS_QUERY_LIMITED_INFORMATION: PROCESS_ACCESS_RIGHTS = 0x1000;
/// Set some information.
pub const PROCESS_SET_LIMITED_INFORMATION: PROCESS_ACCESS_RIGHTS = 0x2000;
/// Every right on a process object.
pub const PROCESS_ALL_ACCESS: PROCESS_ACCESS_RIGHTS = 0x001F_FFFF;
/// Delete (standard right, process flavour).
pub const PROCESS_DELETE: PROCESS_ACCESS_RIGHTS = 0x0001_0000;
/// Read the security descriptor (standard right, process flavour).
pub const PROCESS_READ_CONTROL: PROCESS_ACCESS_RIGHTS = 0x0002_0000;
/// Change the DACL (standard right, process flavour).
pub const PROCESS_WRITE_DAC: PROCESS_ACCESS_RIGHTS = 0x0004_0000;
/// Change the owner (standard right, process flavour).
pub const PROCESS_WRITE_OWNER: PROCESS_ACCESS_RIGHTS = 0x0008_0000;
/// Wait on the process (standard right, process flavour).
pub const PROCESS_SYNCHRONIZE: PROCESS_ACCESS_RIGHTS = 0x0010_0000;
/// The standard rights every object type has (process flavour).
pub const PROCESS_STANDARD_RIGHTS_REQUIRED: PROCESS_ACCESS_RIGHTS = 0x000F_0000;
/// Ask for every right the caller may have (`Win32::Security`).
pub const MAXIMUM_ALLOWED: u32 = 0x0200_0000;
// ---------------------------------------------------------------------------------------------
// Heaps (issue 16; docs/heap-spec.md §2): HeapCreate/HeapAlloc flags, HeapWalk entry flags,
// heap information classes, and the codes the heap functions report.
// ---------------------------------------------------------------------------------------------

/// Flags of HeapCreate / HeapAlloc (`Win32::System::Memory::HEAP_FLAGS`).
pub type HEAP_FLAGS = u32;
/// A heap information class (`Win32::System::Memory::HEAP_INFORMATION_CLASS`).
pub type HEAP_INFORMATION_CLASS = i32;
/// No heap flags.
pub const HEAP_NONE: HEAP_FLAGS = 0x0;
/// The heap takes no lock (creation or per call).
pub const HEAP_NO_SERIALIZE: HEAP_FLAGS = 0x1;
/// The heap may grow (internal mark of growable heaps).
pub const HEAP_GROWABLE: HEAP_FLAGS = 0x2;
/// Allocation failures raise STATUS_NO_MEMORY (on Linux: the exception hook, then abort).
pub const HEAP_GENERATE_EXCEPTIONS: HEAP_FLAGS = 0x4;
/// The block is zeroed.
pub const HEAP_ZERO_MEMORY: HEAP_FLAGS = 0x8;
/// HeapReAlloc fails rather than move the block.
pub const HEAP_REALLOC_IN_PLACE_ONLY: HEAP_FLAGS = 0x10;
/// Debug tail checking (stripped by HeapCreate).
pub const HEAP_TAIL_CHECKING_ENABLED: HEAP_FLAGS = 0x20;
/// Debug free checking (stripped by HeapCreate).
pub const HEAP_FREE_CHECKING_ENABLED: HEAP_FLAGS = 0x40;
/// Do not coalesce free blocks (ignored).
pub const HEAP_DISABLE_COALESCE_ON_FREE: HEAP_FLAGS = 0x80;
/// Segment heap (ignored: every heap here is an NT-style heap).
pub const HEAP_CREATE_SEGMENT_HEAP: HEAP_FLAGS = 0x100;
/// Hardened heap (ignored).
pub const HEAP_CREATE_HARDENED: HEAP_FLAGS = 0x200;
/// 16-byte alignment (always the case).
pub const HEAP_CREATE_ALIGN_16: HEAP_FLAGS = 0x10000;
/// Tracing (ignored).
pub const HEAP_CREATE_ENABLE_TRACING: HEAP_FLAGS = 0x20000;
/// Heap pages are PAGE_EXECUTE_READWRITE.
pub const HEAP_CREATE_ENABLE_EXECUTE: HEAP_FLAGS = 0x40000;
/// Largest heap tag.
pub const HEAP_MAXIMUM_TAG: HEAP_FLAGS = 0xFFF;
/// Pseudo-tag flag.
pub const HEAP_PSEUDO_TAG_FLAG: HEAP_FLAGS = 0x8000;
/// Shift of a tag in the flags.
pub const HEAP_TAG_SHIFT: HEAP_FLAGS = 18;
/// Alignment of every heap block (`Win32::System::SystemServices`).
pub const MEMORY_ALLOCATION_ALIGNMENT: u32 = 16;
/// HeapQueryInformation / HeapSetInformation: 0 standard, 2 low-fragmentation heap.
pub const HeapCompatibilityInformation: HEAP_INFORMATION_CLASS = 0;
/// HeapSetInformation: terminate the process on heap corruption.
pub const HeapEnableTerminationOnCorruption: HEAP_INFORMATION_CLASS = 1;
/// HeapSetInformation: trim caches and decommit.
pub const HeapOptimizeResources: HEAP_INFORMATION_CLASS = 3;
/// Heap tags (not supported: ERROR_INVALID_PARAMETER).
pub const HeapTag: HEAP_INFORMATION_CLASS = 7;
/// `HEAP_OPTIMIZE_RESOURCES_INFORMATION::Version` this implementation accepts.
pub const HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION: u32 = 1;
/// HeapWalk: the entry is a region (segment) of the heap.
pub const PROCESS_HEAP_REGION: u32 = 0x1;
/// HeapWalk: the entry is an uncommitted range of a region.
pub const PROCESS_HEAP_UNCOMMITTED_RANGE: u32 = 0x2;
/// HeapWalk: the entry is an allocated block.
pub const PROCESS_HEAP_ENTRY_BUSY: u32 = 0x4;
/// HeapWalk: segment allocation (never set here).
pub const PROCESS_HEAP_SEG_ALLOC: u32 = 0x8;
/// HeapWalk: moveable block (never set on current Windows, nor here).
pub const PROCESS_HEAP_ENTRY_MOVEABLE: u32 = 0x10;
/// HeapWalk: DDE-shared block (never set on current Windows, nor here).
pub const PROCESS_HEAP_ENTRY_DDESHARE: u32 = 0x20;
/// No more data is available (the end of a HeapWalk).
pub const ERROR_NO_MORE_ITEMS: WIN32_ERROR = 259;
/// A heap has been corrupted (what HeapEnableTerminationOnCorruption terminates with).
pub const STATUS_HEAP_CORRUPTION: NTSTATUS = 0xC0000374_u32 as i32;

// ---------------------------------------------------------------------------------------------
// Global and Local memory (issue 16 item 2, `docs/heap-spec.md` §2, §4).
// ---------------------------------------------------------------------------------------------

/// A Global memory handle or fixed pointer (`Win32::Foundation::HGLOBAL`).
pub type HGLOBAL = *mut core::ffi::c_void;
/// A Local memory handle or fixed pointer (`Win32::Foundation::HLOCAL`).
pub type HLOCAL = *mut core::ffi::c_void;
/// GlobalAlloc's flags (`Win32::System::Memory::GLOBAL_ALLOC_FLAGS`).
pub type GLOBAL_ALLOC_FLAGS = u32;
/// LocalAlloc's flags (`Win32::System::Memory::LOCAL_ALLOC_FLAGS`).
pub type LOCAL_ALLOC_FLAGS = u32;
/// A fixed block: the return value is the pointer.
pub const GMEM_FIXED: GLOBAL_ALLOC_FLAGS = 0x0000;
/// A moveable block: the return value is a handle (lock it for a pointer).
pub const GMEM_MOVEABLE: GLOBAL_ALLOC_FLAGS = 0x0002;
/// Obsolete, ignored.
pub const GMEM_NOCOMPACT: u32 = 0x0010;
/// Obsolete, ignored.
pub const GMEM_NODISCARD: u32 = 0x0020;
/// The block is zeroed.
pub const GMEM_ZEROINIT: GLOBAL_ALLOC_FLAGS = 0x0040;
/// GlobalReAlloc: change the block's attributes only.
pub const GMEM_MODIFY: u32 = 0x0080;
/// A moveable block that GlobalReAlloc(h, 0, GMEM_MOVEABLE) may discard.
pub const GMEM_DISCARDABLE: u32 = 0x0100;
/// Obsolete, ignored.
pub const GMEM_NOT_BANKED: u32 = 0x1000;
/// Obsolete, ignored (same as GMEM_NOT_BANKED).
pub const GMEM_LOWER: u32 = 0x1000;
/// DDE sharing (shown by GlobalFlags, otherwise no effect).
pub const GMEM_DDESHARE: u32 = 0x2000;
/// Same as GMEM_DDESHARE.
pub const GMEM_SHARE: u32 = 0x2000;
/// Obsolete, ignored.
pub const GMEM_NOTIFY: u32 = 0x4000;
/// Every flag GlobalAlloc accepts.
pub const GMEM_VALID_FLAGS: u32 = 0x7F72;
/// GlobalFlags: not a valid handle.
pub const GMEM_INVALID_HANDLE: u32 = 0x8000;
/// GlobalFlags: the block has no data (discarded or size 0).
pub const GMEM_DISCARDED: u32 = 0x4000;
/// GlobalFlags: the lock-count bits.
pub const GMEM_LOCKCOUNT: u32 = 0x00FF;
/// GMEM_MOVEABLE | GMEM_ZEROINIT.
pub const GHND: GLOBAL_ALLOC_FLAGS = 0x0042;
/// GMEM_FIXED | GMEM_ZEROINIT.
pub const GPTR: GLOBAL_ALLOC_FLAGS = 0x0040;
/// A fixed block: the return value is the pointer.
pub const LMEM_FIXED: LOCAL_ALLOC_FLAGS = 0x0000;
/// A moveable block: the return value is a handle.
pub const LMEM_MOVEABLE: LOCAL_ALLOC_FLAGS = 0x0002;
/// Obsolete, ignored.
pub const LMEM_NOCOMPACT: u32 = 0x0010;
/// Obsolete, ignored.
pub const LMEM_NODISCARD: u32 = 0x0020;
/// The block is zeroed.
pub const LMEM_ZEROINIT: LOCAL_ALLOC_FLAGS = 0x0040;
/// LocalReAlloc: change the block's attributes only.
pub const LMEM_MODIFY: u32 = 0x0080;
/// A moveable block that may be discarded (note: 0x0F00, not GMEM_DISCARDABLE's 0x0100).
pub const LMEM_DISCARDABLE: u32 = 0x0F00;
/// Every flag LocalAlloc accepts.
pub const LMEM_VALID_FLAGS: u32 = 0x0F72;
/// LocalFlags: not a valid handle.
pub const LMEM_INVALID_HANDLE: u32 = 0x8000;
/// LocalFlags: the block has no data (discarded or size 0).
pub const LMEM_DISCARDED: u32 = 0x4000;
/// LocalFlags: the lock-count bits.
pub const LMEM_LOCKCOUNT: u32 = 0x00FF;
/// LMEM_MOVEABLE | LMEM_ZEROINIT.
pub const LHND: LOCAL_ALLOC_FLAGS = 0x0042;
/// LMEM_FIXED | LMEM_ZEROINIT.
pub const LPTR: LOCAL_ALLOC_FLAGS = 0x0040;
/// LMEM_MOVEABLE.
pub const NONZEROLHND: LOCAL_ALLOC_FLAGS = 0x0002;
/// LMEM_FIXED.
pub const NONZEROLPTR: LOCAL_ALLOC_FLAGS = 0x0000;
/// The block has been discarded (GlobalLock of a block without data).
pub const ERROR_DISCARDED: WIN32_ERROR = 157;
