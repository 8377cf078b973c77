//! Win32 structures of the virtual-memory API, laid out exactly as windows-sys 0.61 declares
//! them (`#[repr(C)]`, `Clone + Copy`, zeroed `Default`), with the same type and field names.

#![allow(non_camel_case_types, non_snake_case)]

use super::consts::*;
use core::ffi::c_void;

/// Information about a range of pages, as filled in by `VirtualQuery` (64-bit layout).
///
/// windows-sys declares this layout for x86_64/aarch64/arm64ec; it is used here for every
/// 64-bit target, matching the SDK's `_WIN64` layout.
#[cfg(target_pointer_width = "64")]
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MEMORY_BASIC_INFORMATION {
    /// Base address of the region of pages (rounded down to a page boundary).
    pub BaseAddress: *mut c_void,
    /// Base address of the allocation (reservation) that contains the region.
    pub AllocationBase: *mut c_void,
    /// Protection given when the allocation was first reserved (0 if the caller has no access).
    pub AllocationProtect: PAGE_PROTECTION_FLAGS,
    /// Memory partition the region belongs to (0 for the system partition).
    pub PartitionId: u16,
    /// Size in bytes of the region of pages with identical attributes, starting at BaseAddress.
    pub RegionSize: usize,
    /// State of the pages: `MEM_COMMIT`, `MEM_RESERVE` or `MEM_FREE`.
    pub State: VIRTUAL_ALLOCATION_TYPE,
    /// Current protection of the pages (0 unless committed).
    pub Protect: PAGE_PROTECTION_FLAGS,
    /// Type of the pages: `MEM_PRIVATE`, `MEM_MAPPED` or `MEM_IMAGE` (0 if free).
    pub Type: PAGE_TYPE,
}

/// Information about a range of pages, as filled in by `VirtualQuery` (32-bit layout).
///
/// windows-sys declares this layout for x86 only; it is used here for every 32-bit target.
#[cfg(target_pointer_width = "32")]
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MEMORY_BASIC_INFORMATION {
    /// Base address of the region of pages (rounded down to a page boundary).
    pub BaseAddress: *mut c_void,
    /// Base address of the allocation (reservation) that contains the region.
    pub AllocationBase: *mut c_void,
    /// Protection given when the allocation was first reserved (0 if the caller has no access).
    pub AllocationProtect: PAGE_PROTECTION_FLAGS,
    /// Size in bytes of the region of pages with identical attributes, starting at BaseAddress.
    pub RegionSize: usize,
    /// State of the pages: `MEM_COMMIT`, `MEM_RESERVE` or `MEM_FREE`.
    pub State: VIRTUAL_ALLOCATION_TYPE,
    /// Current protection of the pages (0 unless committed).
    pub Protect: PAGE_PROTECTION_FLAGS,
    /// Type of the pages: `MEM_PRIVATE`, `MEM_MAPPED` or `MEM_IMAGE` (0 if free).
    pub Type: PAGE_TYPE,
}

impl Default for MEMORY_BASIC_INFORMATION {
    fn default() -> Self {
        // SAFETY: all fields are integers or raw pointers, for which all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

/// Fixed-width 32-bit form of `MEMORY_BASIC_INFORMATION` (28 bytes, any target).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct MEMORY_BASIC_INFORMATION32 {
    /// Base address of the region of pages.
    pub BaseAddress: u32,
    /// Base address of the allocation that contains the region.
    pub AllocationBase: u32,
    /// Protection given when the allocation was first reserved.
    pub AllocationProtect: PAGE_PROTECTION_FLAGS,
    /// Size in bytes of the region.
    pub RegionSize: u32,
    /// State of the pages: `MEM_COMMIT`, `MEM_RESERVE` or `MEM_FREE`.
    pub State: VIRTUAL_ALLOCATION_TYPE,
    /// Current protection of the pages.
    pub Protect: PAGE_PROTECTION_FLAGS,
    /// Type of the pages: `MEM_PRIVATE`, `MEM_MAPPED` or `MEM_IMAGE`.
    pub Type: PAGE_TYPE,
}

/// Fixed-width 64-bit form of `MEMORY_BASIC_INFORMATION` (48 bytes, any target).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct MEMORY_BASIC_INFORMATION64 {
    /// Base address of the region of pages.
    pub BaseAddress: u64,
    /// Base address of the allocation that contains the region.
    pub AllocationBase: u64,
    /// Protection given when the allocation was first reserved.
    pub AllocationProtect: PAGE_PROTECTION_FLAGS,
    /// Explicit padding so that RegionSize is 8-byte aligned.
    pub __alignment1: u32,
    /// Size in bytes of the region.
    pub RegionSize: u64,
    /// State of the pages: `MEM_COMMIT`, `MEM_RESERVE` or `MEM_FREE`.
    pub State: VIRTUAL_ALLOCATION_TYPE,
    /// Current protection of the pages.
    pub Protect: PAGE_PROTECTION_FLAGS,
    /// Type of the pages: `MEM_PRIVATE`, `MEM_MAPPED` or `MEM_IMAGE`.
    pub Type: PAGE_TYPE,
    /// Explicit tail padding to a multiple of 8 bytes.
    pub __alignment2: u32,
}

/// System and processor information, as filled in by `GetSystemInfo`/`GetNativeSystemInfo`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SYSTEM_INFO {
    /// Obsolete OEM id, overlaid with the processor architecture.
    pub Anonymous: SYSTEM_INFO_0,
    /// Page size in bytes (4096), the granularity of protection and commitment.
    pub dwPageSize: u32,
    /// Lowest address accessible to applications (0x10000).
    pub lpMinimumApplicationAddress: *mut c_void,
    /// Highest address accessible to applications (0x7FFFFFFEFFFF on x64).
    pub lpMaximumApplicationAddress: *mut c_void,
    /// Bit mask of the processors configured in the system.
    pub dwActiveProcessorMask: usize,
    /// Number of logical processors in the current group.
    pub dwNumberOfProcessors: u32,
    /// Obsolete processor type (`PROCESSOR_INTEL_386`, `PROCESSOR_AMD_X8664`, ...).
    pub dwProcessorType: u32,
    /// Granularity of reservation start addresses (65536).
    pub dwAllocationGranularity: u32,
    /// Architecture-dependent processor level (family).
    pub wProcessorLevel: u16,
    /// Architecture-dependent processor revision (model and stepping).
    pub wProcessorRevision: u16,
}

impl Default for SYSTEM_INFO {
    fn default() -> Self {
        // SAFETY: all fields are integers, raw pointers or a union of integers; all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

/// First member of `SYSTEM_INFO`: the obsolete OEM id or the processor architecture.
#[repr(C)]
#[derive(Clone, Copy)]
pub union SYSTEM_INFO_0 {
    /// Obsolete OEM id (kept for compatibility; overlays the architecture fields).
    pub dwOemId: u32,
    /// Processor architecture and reserved word.
    pub Anonymous: SYSTEM_INFO_0_0,
}

impl Default for SYSTEM_INFO_0 {
    fn default() -> Self {
        // SAFETY: both union members are plain integers; all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

/// Processor-architecture view of `SYSTEM_INFO_0`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct SYSTEM_INFO_0_0 {
    /// Processor architecture of the installed OS (`PROCESSOR_ARCHITECTURE_AMD64`, ...).
    pub wProcessorArchitecture: PROCESSOR_ARCHITECTURE,
    /// Reserved; zero.
    pub wReserved: u16,
}

/// One extended parameter of `VirtualAlloc2`/`MapViewOfFile3` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MEM_EXTENDED_PARAMETER {
    /// Bit fields: `Type` (low 8 bits, a `MEM_EXTENDED_PARAMETER_TYPE`) and `Reserved` (56 bits).
    pub Anonymous1: MEM_EXTENDED_PARAMETER_0,
    /// The parameter's value, interpreted according to `Type`.
    pub Anonymous2: MEM_EXTENDED_PARAMETER_1,
}

impl Default for MEM_EXTENDED_PARAMETER {
    fn default() -> Self {
        // SAFETY: all fields are integers or a union of integers/pointers; all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

/// Bit-field header of `MEM_EXTENDED_PARAMETER`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct MEM_EXTENDED_PARAMETER_0 {
    /// `Type: 8` bits (`MEM_EXTENDED_PARAMETER_TYPE`) then `Reserved: 56` bits (must be zero).
    pub _bitfield: u64,
}

/// Value of a `MEM_EXTENDED_PARAMETER`, selected by its `Type`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union MEM_EXTENDED_PARAMETER_1 {
    /// 64-bit value (e.g. attribute flags for `MemExtendedParameterAttributeFlags`).
    pub ULong64: u64,
    /// Pointer (e.g. to `MEM_ADDRESS_REQUIREMENTS` for `MemExtendedParameterAddressRequirements`).
    pub Pointer: *mut c_void,
    /// Size value.
    pub Size: usize,
    /// Handle (partition or user-physical handle).
    pub Handle: HANDLE,
    /// 32-bit value (e.g. NUMA node for `MemExtendedParameterNumaNode`).
    pub ULong: u32,
}

impl Default for MEM_EXTENDED_PARAMETER_1 {
    fn default() -> Self {
        // SAFETY: every union member is an integer or raw pointer; all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

/// Address constraints for `VirtualAlloc2` (`MemExtendedParameterAddressRequirements`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MEM_ADDRESS_REQUIREMENTS {
    /// Lowest acceptable start address (NULL for no limit).
    pub LowestStartingAddress: *mut c_void,
    /// Highest acceptable end address, inclusive (NULL for no limit).
    pub HighestEndingAddress: *mut c_void,
    /// Required alignment: 0 or a power of two that is a multiple of the allocation granularity.
    pub Alignment: usize,
}

impl Default for MEM_ADDRESS_REQUIREMENTS {
    fn default() -> Self {
        // SAFETY: all fields are integers or raw pointers; all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

/// One address range for `PrefetchVirtualMemory`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WIN32_MEMORY_RANGE_ENTRY {
    /// Start address of the range.
    pub VirtualAddress: *mut c_void,
    /// Size of the range in bytes.
    pub NumberOfBytes: usize,
}

impl Default for WIN32_MEMORY_RANGE_ENTRY {
    fn default() -> Self {
        // SAFETY: all fields are integers or raw pointers; all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

/// Security attributes of a new object (`Win32::Security::SECURITY_ATTRIBUTES`). virtmem
/// accepts and ignores them: there are no security descriptors, and no child processes inherit
/// handles.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SECURITY_ATTRIBUTES {
    /// Size of this structure in bytes.
    pub nLength: u32,
    /// A security descriptor (ignored).
    pub lpSecurityDescriptor: *mut c_void,
    /// Whether child processes inherit the handle (ignored).
    pub bInheritHandle: BOOL,
}

impl Default for SECURITY_ATTRIBUTES {
    fn default() -> Self {
        // SAFETY: all fields are integers or raw pointers; all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

/// State of an asynchronous I/O request (`Win32::System::IO::OVERLAPPED`). virtmem's file
/// functions are synchronous only: a non-NULL `OVERLAPPED` fails with ERROR_INVALID_PARAMETER.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OVERLAPPED {
    /// Status code of the request (system use).
    pub Internal: usize,
    /// Bytes transferred (system use).
    pub InternalHigh: usize,
    /// The file offset of the request, or a pointer.
    pub Anonymous: OVERLAPPED_0,
    /// Event signalled when the request completes.
    pub hEvent: HANDLE,
}

impl Default for OVERLAPPED {
    fn default() -> Self {
        // SAFETY: all fields are integers, raw pointers or a union of them; all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

/// The offset-or-pointer union of `OVERLAPPED`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union OVERLAPPED_0 {
    /// The 64-bit file offset as two DWORDs.
    pub Anonymous: OVERLAPPED_0_0,
    /// Reserved for system use.
    pub Pointer: *mut c_void,
}

impl Default for OVERLAPPED_0 {
    fn default() -> Self {
        // SAFETY: both members are integers or a raw pointer; all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

/// The file offset of an `OVERLAPPED` request.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct OVERLAPPED_0_0 {
    /// Low DWORD of the offset.
    pub Offset: u32,
    /// High DWORD of the offset.
    pub OffsetHigh: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn memory_basic_information_layout_64() {
        assert_eq!(size_of::<MEMORY_BASIC_INFORMATION>(), 48);
        assert_eq!(align_of::<MEMORY_BASIC_INFORMATION>(), 8);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION, BaseAddress), 0);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION, AllocationBase), 8);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION, AllocationProtect), 16);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION, PartitionId), 20);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION, RegionSize), 24);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION, State), 32);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION, Protect), 36);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION, Type), 40);
    }

    #[cfg(target_pointer_width = "32")]
    #[test]
    fn memory_basic_information_layout_32() {
        assert_eq!(size_of::<MEMORY_BASIC_INFORMATION>(), 28);
        assert_eq!(align_of::<MEMORY_BASIC_INFORMATION>(), 4);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION, RegionSize), 12);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION, Type), 24);
    }

    #[test]
    fn memory_basic_information_fixed_width_layouts() {
        assert_eq!(size_of::<MEMORY_BASIC_INFORMATION32>(), 28);
        assert_eq!(align_of::<MEMORY_BASIC_INFORMATION32>(), 4);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION32, RegionSize), 12);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION32, Type), 24);

        assert_eq!(size_of::<MEMORY_BASIC_INFORMATION64>(), 48);
        assert_eq!(
            offset_of!(MEMORY_BASIC_INFORMATION64, AllocationProtect),
            16
        );
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION64, RegionSize), 24);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION64, State), 32);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION64, Protect), 36);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION64, Type), 40);
        assert_eq!(offset_of!(MEMORY_BASIC_INFORMATION64, __alignment2), 44);
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn system_info_layout_64() {
        assert_eq!(size_of::<SYSTEM_INFO>(), 48);
        assert_eq!(align_of::<SYSTEM_INFO>(), 8);
        assert_eq!(offset_of!(SYSTEM_INFO, Anonymous), 0);
        assert_eq!(offset_of!(SYSTEM_INFO, dwPageSize), 4);
        assert_eq!(offset_of!(SYSTEM_INFO, lpMinimumApplicationAddress), 8);
        assert_eq!(offset_of!(SYSTEM_INFO, lpMaximumApplicationAddress), 16);
        assert_eq!(offset_of!(SYSTEM_INFO, dwActiveProcessorMask), 24);
        assert_eq!(offset_of!(SYSTEM_INFO, dwNumberOfProcessors), 32);
        assert_eq!(offset_of!(SYSTEM_INFO, dwProcessorType), 36);
        assert_eq!(offset_of!(SYSTEM_INFO, dwAllocationGranularity), 40);
        assert_eq!(offset_of!(SYSTEM_INFO, wProcessorLevel), 44);
        assert_eq!(offset_of!(SYSTEM_INFO, wProcessorRevision), 46);
    }

    #[cfg(target_pointer_width = "32")]
    #[test]
    fn system_info_layout_32() {
        assert_eq!(size_of::<SYSTEM_INFO>(), 36);
    }

    #[test]
    fn system_info_union_overlays_architecture() {
        assert_eq!(size_of::<SYSTEM_INFO_0>(), 4);
        assert_eq!(size_of::<SYSTEM_INFO_0_0>(), 4);
        assert_eq!(offset_of!(SYSTEM_INFO_0_0, wReserved), 2);
        let mut u = SYSTEM_INFO_0::default();
        u.Anonymous.wProcessorArchitecture = PROCESSOR_ARCHITECTURE_AMD64;
        // SAFETY: both members are plain integers; reading either is always defined.
        let oem = unsafe { u.dwOemId };
        assert_eq!(oem.to_ne_bytes()[..2], 9u16.to_ne_bytes());
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn mem_extended_parameter_layout() {
        assert_eq!(size_of::<MEM_EXTENDED_PARAMETER>(), 16);
        assert_eq!(align_of::<MEM_EXTENDED_PARAMETER>(), 8);
        assert_eq!(offset_of!(MEM_EXTENDED_PARAMETER, Anonymous1), 0);
        assert_eq!(offset_of!(MEM_EXTENDED_PARAMETER, Anonymous2), 8);
        assert_eq!(size_of::<MEM_EXTENDED_PARAMETER_1>(), 8);
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn mem_address_requirements_and_range_entry_layout() {
        assert_eq!(size_of::<MEM_ADDRESS_REQUIREMENTS>(), 24);
        assert_eq!(
            offset_of!(MEM_ADDRESS_REQUIREMENTS, LowestStartingAddress),
            0
        );
        assert_eq!(
            offset_of!(MEM_ADDRESS_REQUIREMENTS, HighestEndingAddress),
            8
        );
        assert_eq!(offset_of!(MEM_ADDRESS_REQUIREMENTS, Alignment), 16);
        assert_eq!(size_of::<WIN32_MEMORY_RANGE_ENTRY>(), 16);
        assert_eq!(offset_of!(WIN32_MEMORY_RANGE_ENTRY, NumberOfBytes), 8);
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn file_structs_layout() {
        assert_eq!(size_of::<SECURITY_ATTRIBUTES>(), 24);
        assert_eq!(offset_of!(SECURITY_ATTRIBUTES, lpSecurityDescriptor), 8);
        assert_eq!(offset_of!(SECURITY_ATTRIBUTES, bInheritHandle), 16);
        assert_eq!(size_of::<OVERLAPPED>(), 32);
        assert_eq!(offset_of!(OVERLAPPED, Anonymous), 16);
        assert_eq!(offset_of!(OVERLAPPED, hEvent), 24);
        assert_eq!(size_of::<OVERLAPPED_0>(), 8);
        assert_eq!(offset_of!(OVERLAPPED_0_0, OffsetHigh), 4);
        assert!(OVERLAPPED::default().hEvent.is_null());
        assert!(SECURITY_ATTRIBUTES::default()
            .lpSecurityDescriptor
            .is_null());
    }

    #[test]
    fn defaults_are_zeroed() {
        let mbi = MEMORY_BASIC_INFORMATION::default();
        assert!(mbi.BaseAddress.is_null());
        assert_eq!(
            (mbi.RegionSize, mbi.State, mbi.Protect, mbi.Type),
            (0, 0, 0, 0)
        );
        let si = SYSTEM_INFO::default();
        // SAFETY: union of plain integers.
        assert_eq!(unsafe { si.Anonymous.dwOemId }, 0);
        assert_eq!(si.dwPageSize, 0);
        let p = MEM_EXTENDED_PARAMETER::default();
        assert_eq!(p.Anonymous1._bitfield, 0);
        // SAFETY: union of integers/pointers; all-zero is valid for each.
        assert_eq!(unsafe { p.Anonymous2.ULong64 }, 0);
        assert!(MEM_ADDRESS_REQUIREMENTS::default()
            .HighestEndingAddress
            .is_null());
        assert!(WIN32_MEMORY_RANGE_ENTRY::default().VirtualAddress.is_null());
    }
}

/// What MapViewOfFile* returns and UnmapViewOfFile* takes
/// (`Win32::System::Memory::MEMORY_MAPPED_VIEW_ADDRESS`): the view's address, NULL on
/// failure. Passed and returned like a plain pointer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MEMORY_MAPPED_VIEW_ADDRESS {
    /// The address.
    pub Value: *mut core::ffi::c_void,
}

/// The machine's memory, as `GlobalMemoryStatusEx` fills it in (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct MEMORYSTATUSEX {
    /// `size_of::<MEMORYSTATUSEX>()`, set by the caller.
    pub dwLength: u32,
    /// Percent of physical memory in use.
    pub dwMemoryLoad: u32,
    /// Physical memory, bytes.
    pub ullTotalPhys: u64,
    /// Physical memory available now, bytes.
    pub ullAvailPhys: u64,
    /// The commit limit, bytes.
    pub ullTotalPageFile: u64,
    /// What can still be committed, bytes.
    pub ullAvailPageFile: u64,
    /// The user address space, bytes.
    pub ullTotalVirtual: u64,
    /// The unmapped part of it, bytes.
    pub ullAvailVirtual: u64,
    /// Always 0.
    pub ullAvailExtendedVirtual: u64,
}

/// The legacy form `GlobalMemoryStatus` fills in (figures in `usize`).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct MEMORYSTATUS {
    /// `size_of::<MEMORYSTATUS>()` (set by the function).
    pub dwLength: u32,
    /// Percent of physical memory in use.
    pub dwMemoryLoad: u32,
    /// Physical memory, bytes.
    pub dwTotalPhys: usize,
    /// Physical memory available now, bytes.
    pub dwAvailPhys: usize,
    /// The commit limit, bytes.
    pub dwTotalPageFile: usize,
    /// What can still be committed, bytes.
    pub dwAvailPageFile: usize,
    /// The user address space, bytes.
    pub dwTotalVirtual: usize,
    /// The unmapped part of it, bytes.
    pub dwAvailVirtual: usize,
}

// ---- The NT layer (win32/nt): working sets, names, object attributes, whole regions ----
// Layouts of windows-sys 0.61 (`Win32::System::ProcessStatus`, `Win32::Foundation`,
// `Wdk::Foundation`, `Win32::System::Memory`); sizes checked at compile time below.

/// One page of the working set (QueryWorkingSet): `Protection : 5` (the NT protection index),
/// `ShareCount : 3`, `Shared : 1`, `Reserved : 3`, `VirtualPage : 52` (20 on 32-bit).
#[repr(C)]
#[derive(Clone, Copy)]
pub union PSAPI_WORKING_SET_BLOCK {
    /// The whole word.
    pub Flags: usize,
    /// The bit fields.
    pub Anonymous: PSAPI_WORKING_SET_BLOCK_0,
}

/// The bit fields of [`PSAPI_WORKING_SET_BLOCK`].
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct PSAPI_WORKING_SET_BLOCK_0 {
    /// The bits.
    pub _bitfield: usize,
}

/// QueryWorkingSet's buffer: the number of pages, then one block per page.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PSAPI_WORKING_SET_INFORMATION {
    /// How many pages the working set has (set also when the buffer is too small).
    pub NumberOfEntries: usize,
    /// The first of `NumberOfEntries` blocks.
    pub WorkingSetInfo: [PSAPI_WORKING_SET_BLOCK; 1],
}

/// A page's working-set attributes (QueryWorkingSetEx): `Valid : 1`, `ShareCount : 3`,
/// `Win32Protection : 11`, `Shared : 1`, `Node : 6`, `Locked : 1`, `LargePage : 1`,
/// `Reserved : 7`, `Bad : 1` (and 32 reserved bits on 64-bit); when not valid, only `Shared`
/// (bit 15) and `Bad` (bit 31) mean something.
#[repr(C)]
#[derive(Clone, Copy)]
pub union PSAPI_WORKING_SET_EX_BLOCK {
    /// The whole word.
    pub Flags: usize,
    /// The bit fields.
    pub Anonymous: PSAPI_WORKING_SET_EX_BLOCK_0,
}

/// The two readings of [`PSAPI_WORKING_SET_EX_BLOCK`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union PSAPI_WORKING_SET_EX_BLOCK_0 {
    /// A valid page's fields.
    pub Anonymous: PSAPI_WORKING_SET_EX_BLOCK_0_0,
    /// An invalid page's fields.
    pub Invalid: PSAPI_WORKING_SET_EX_BLOCK_0_1,
}

/// The bit fields of a valid page.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct PSAPI_WORKING_SET_EX_BLOCK_0_0 {
    /// The bits.
    pub _bitfield: usize,
}

/// The bit fields of a page that is not in the working set.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct PSAPI_WORKING_SET_EX_BLOCK_0_1 {
    /// The bits.
    pub _bitfield: usize,
}

/// QueryWorkingSetEx's entries: the caller sets `VirtualAddress`, the call fills
/// `VirtualAttributes`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PSAPI_WORKING_SET_EX_INFORMATION {
    /// The page asked about.
    pub VirtualAddress: *mut c_void,
    /// Its attributes.
    pub VirtualAttributes: PSAPI_WORKING_SET_EX_BLOCK,
}

/// A counted UTF-16 string (`Win32::Foundation::UNICODE_STRING`): lengths in bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UNICODE_STRING {
    /// Bytes of text, without a terminating NUL.
    pub Length: u16,
    /// Bytes of `Buffer`.
    pub MaximumLength: u16,
    /// The text.
    pub Buffer: *mut u16,
}

/// An object's name and attributes for NtCreateSection (`Wdk::Foundation::OBJECT_ATTRIBUTES`;
/// the security members are opaque pointers here).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OBJECT_ATTRIBUTES {
    /// `size_of::<OBJECT_ATTRIBUTES>()`.
    pub Length: u32,
    /// A directory the name is relative to (NULL: the name is absolute).
    pub RootDirectory: HANDLE,
    /// The name, or NULL for an unnamed object.
    pub ObjectName: *const UNICODE_STRING,
    /// OBJ_* flags (OBJ_OPENIF, OBJ_CASE_INSENSITIVE, ...).
    pub Attributes: u32,
    /// A SECURITY_DESCRIPTOR (ignored).
    pub SecurityDescriptor: *const c_void,
    /// A SECURITY_QUALITY_OF_SERVICE (ignored).
    pub SecurityQualityOfService: *const c_void,
}

/// The whole allocation around an address (NtQueryVirtualMemory(MemoryRegionInformation),
/// QueryVirtualMemoryInformation): C programs know it as MEMORY_REGION_INFORMATION.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WIN32_MEMORY_REGION_INFORMATION {
    /// The allocation's base.
    pub AllocationBase: *mut c_void,
    /// Its AllocationProtect.
    pub AllocationProtect: u32,
    /// The region's type bits.
    pub Anonymous: WIN32_MEMORY_REGION_INFORMATION_0,
    /// The whole allocation's size.
    pub RegionSize: usize,
    /// Its committed bytes.
    pub CommitSize: usize,
}

/// The type bits of [`WIN32_MEMORY_REGION_INFORMATION`]: `Private : 1`, `MappedDataFile : 1`,
/// `MappedImage : 1`, `MappedPageFile : 1`, `MappedPhysical : 1`, `DirectMapped : 1`,
/// `Reserved : 26`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union WIN32_MEMORY_REGION_INFORMATION_0 {
    /// The whole word.
    pub Flags: u32,
    /// The bit fields.
    pub Anonymous: WIN32_MEMORY_REGION_INFORMATION_0_0,
}

/// The bit fields of [`WIN32_MEMORY_REGION_INFORMATION_0`].
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct WIN32_MEMORY_REGION_INFORMATION_0_0 {
    /// The bits.
    pub _bitfield: u32,
}

macro_rules! zeroed_default {
    ($($t:ident)*) => {$(
        impl Default for $t {
            fn default() -> Self {
                // SAFETY: integers and raw pointers only, for which all-zero is valid.
                unsafe { core::mem::zeroed() }
            }
        }
    )*};
}
zeroed_default!(
    PSAPI_WORKING_SET_BLOCK PSAPI_WORKING_SET_INFORMATION PSAPI_WORKING_SET_EX_BLOCK
    PSAPI_WORKING_SET_EX_BLOCK_0 PSAPI_WORKING_SET_EX_INFORMATION UNICODE_STRING
    OBJECT_ATTRIBUTES WIN32_MEMORY_REGION_INFORMATION WIN32_MEMORY_REGION_INFORMATION_0
);

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<PSAPI_WORKING_SET_BLOCK>() == 8);
    assert!(size_of::<PSAPI_WORKING_SET_INFORMATION>() == 16);
    assert!(size_of::<PSAPI_WORKING_SET_EX_BLOCK>() == 8);
    assert!(size_of::<PSAPI_WORKING_SET_EX_INFORMATION>() == 16);
    assert!(size_of::<UNICODE_STRING>() == 16);
    assert!(offset_of!(UNICODE_STRING, Buffer) == 8);
    assert!(size_of::<OBJECT_ATTRIBUTES>() == 48);
    assert!(offset_of!(OBJECT_ATTRIBUTES, Attributes) == 24);
    assert!(size_of::<WIN32_MEMORY_REGION_INFORMATION>() == 32);
    assert!(offset_of!(WIN32_MEMORY_REGION_INFORMATION, RegionSize) == 16);
    assert!(offset_of!(WIN32_MEMORY_REGION_INFORMATION, CommitSize) == 24);
};
// ---- end of the NT layer's block ----
// --- Process memory counters (GetProcessMemoryInfo; issue 15 item 2), windows-sys layouts. ---

/// A process's memory use, as `GetProcessMemoryInfo` fills it in (72 bytes on 64-bit).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PROCESS_MEMORY_COUNTERS {
    /// The structure's size (set by GetProcessMemoryInfo).
    pub cb: u32,
    /// Page faults so far.
    pub PageFaultCount: u32,
    /// The largest working set so far, bytes.
    pub PeakWorkingSetSize: usize,
    /// The working set now, bytes.
    pub WorkingSetSize: usize,
    /// The largest paged pool usage so far, bytes.
    pub QuotaPeakPagedPoolUsage: usize,
    /// Paged pool usage now, bytes.
    pub QuotaPagedPoolUsage: usize,
    /// The largest non-paged pool usage so far, bytes.
    pub QuotaPeakNonPagedPoolUsage: usize,
    /// Non-paged pool usage now, bytes.
    pub QuotaNonPagedPoolUsage: usize,
    /// The commit charge of the process, bytes (the same as `PrivateUsage`).
    pub PagefileUsage: usize,
    /// The largest commit charge so far, bytes.
    pub PeakPagefileUsage: usize,
}

/// [`PROCESS_MEMORY_COUNTERS`] with `PrivateUsage` (80 bytes on 64-bit).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PROCESS_MEMORY_COUNTERS_EX {
    /// The structure's size (set by GetProcessMemoryInfo).
    pub cb: u32,
    /// Page faults so far.
    pub PageFaultCount: u32,
    /// The largest working set so far, bytes.
    pub PeakWorkingSetSize: usize,
    /// The working set now, bytes.
    pub WorkingSetSize: usize,
    /// The largest paged pool usage so far, bytes.
    pub QuotaPeakPagedPoolUsage: usize,
    /// Paged pool usage now, bytes.
    pub QuotaPagedPoolUsage: usize,
    /// The largest non-paged pool usage so far, bytes.
    pub QuotaPeakNonPagedPoolUsage: usize,
    /// Non-paged pool usage now, bytes.
    pub QuotaNonPagedPoolUsage: usize,
    /// The commit charge of the process, bytes.
    pub PagefileUsage: usize,
    /// The largest commit charge so far, bytes.
    pub PeakPagefileUsage: usize,
    /// The private commit of the process, bytes.
    pub PrivateUsage: usize,
}
// ---------------------------------------------------------------------------------------------
// Heaps (issue 16): HeapWalk's entry, HeapSummary's figures, HeapOptimizeResources' input.
// ---------------------------------------------------------------------------------------------

/// One item of a HeapWalk (region, uncommitted range, busy or free block).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct PROCESS_HEAP_ENTRY {
    /// The block's data, the region's base, or the uncommitted range's start.
    pub lpData: *mut c_void,
    /// Size in bytes of the data (requested size of a busy block).
    pub cbData: u32,
    /// Bytes the heap uses around the data.
    pub cbOverhead: u8,
    /// The region's index (64 for large blocks).
    pub iRegionIndex: u8,
    /// `PROCESS_HEAP_*` flags (0 for a free block).
    pub wFlags: u16,
    /// Region details (PROCESS_HEAP_REGION) or moveable-block details.
    pub Anonymous: PROCESS_HEAP_ENTRY_0,
}

/// The union of [`PROCESS_HEAP_ENTRY`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union PROCESS_HEAP_ENTRY_0 {
    /// For busy moveable blocks (never reported on current Windows).
    pub Block: PROCESS_HEAP_ENTRY_0_0,
    /// For PROCESS_HEAP_REGION entries.
    pub Region: PROCESS_HEAP_ENTRY_0_1,
}

impl Default for PROCESS_HEAP_ENTRY_0 {
    fn default() -> Self {
        PROCESS_HEAP_ENTRY_0 {
            Region: PROCESS_HEAP_ENTRY_0_1::default(),
        }
    }
}

/// Moveable-block part of [`PROCESS_HEAP_ENTRY_0`].
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PROCESS_HEAP_ENTRY_0_0 {
    /// The block's handle.
    pub hMem: HANDLE,
    /// Reserved.
    pub dwReserved: [u32; 3],
}

impl Default for PROCESS_HEAP_ENTRY_0_0 {
    fn default() -> Self {
        PROCESS_HEAP_ENTRY_0_0 {
            hMem: core::ptr::null_mut(),
            dwReserved: [0; 3],
        }
    }
}

/// Region part of [`PROCESS_HEAP_ENTRY_0`].
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PROCESS_HEAP_ENTRY_0_1 {
    /// Committed bytes of the region.
    pub dwCommittedSize: u32,
    /// Uncommitted (reserved) bytes of the region.
    pub dwUnCommittedSize: u32,
    /// The region's first block.
    pub lpFirstBlock: *mut c_void,
    /// The end of the region's last block.
    pub lpLastBlock: *mut c_void,
}

impl Default for PROCESS_HEAP_ENTRY_0_1 {
    fn default() -> Self {
        PROCESS_HEAP_ENTRY_0_1 {
            dwCommittedSize: 0,
            dwUnCommittedSize: 0,
            lpFirstBlock: core::ptr::null_mut(),
            lpLastBlock: core::ptr::null_mut(),
        }
    }
}

/// HeapSummary's figures.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct HEAP_SUMMARY {
    /// Must be `size_of::<HEAP_SUMMARY>()` on input.
    pub cb: u32,
    /// Sum of the requested sizes of live blocks.
    pub cbAllocated: usize,
    /// Committed bytes.
    pub cbCommitted: usize,
    /// Reserved bytes.
    pub cbReserved: usize,
    /// Maximum reservation.
    pub cbMaxReserve: usize,
}

/// Input of HeapSetInformation(HeapOptimizeResources).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct HEAP_OPTIMIZE_RESOURCES_INFORMATION {
    /// HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION.
    pub Version: u32,
    /// 0.
    pub Flags: u32,
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(core::mem::size_of::<PROCESS_HEAP_ENTRY>() == 40);
    assert!(core::mem::offset_of!(PROCESS_HEAP_ENTRY, Anonymous) == 16);
    assert!(core::mem::size_of::<HEAP_SUMMARY>() == 40);
    assert!(core::mem::size_of::<HEAP_OPTIMIZE_RESOURCES_INFORMATION>() == 8);
};
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(core::mem::size_of::<PROCESS_HEAP_ENTRY>() == 28);
    assert!(core::mem::size_of::<HEAP_SUMMARY>() == 20);
};
