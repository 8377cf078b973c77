/*
 * virtmem.h: the Windows virtual-memory API (VirtualAlloc, VirtualFree, VirtualProtect,
 * VirtualQuery, VirtualLock, ...) with Windows semantics on Linux.
 *
 * Windows C code that includes <windows.h> builds unchanged against this header (include/
 * also holds a windows.h that includes it) and links with libvirtmem:
 *
 *     cc -Iinclude prog.c target/release/libvirtmem.a -lpthread -ldl -lm
 *     cc $(pkg-config --cflags --libs virtmem) prog.c          (after scripts/install.sh)
 *
 * Types, names, constant values and structure layouts follow the Windows SDK (and the
 * windows-sys crate, which libvirtmem's Rust code uses). On Linux, WINAPI is empty: "system"
 * is the C calling convention. DWORD, ULONG and LONG are 32 bits as on Windows (not the
 * 64-bit `long` of Linux). Successful calls leave GetLastError() untouched; failures return
 * NULL / FALSE / 0 / (UINT)-1 and set the calling thread's last error.
 *
 * This header is hand-written. crates/virtmem/tests/c_header.rs keeps it in step with the Rust
 * definitions (crates/virtmem/src/win32/): every constant, structure size, field offset and
 * exported function is checked from C on every `cargo test`.
 */
#ifndef VIRTMEM_H
#define VIRTMEM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------- */
/* Calling conventions and annotations (all empty on Linux)                                  */
/* ---------------------------------------------------------------------------------------- */

#ifndef WINAPI
#define WINAPI
#endif
#ifndef APIENTRY
#define APIENTRY WINAPI
#endif
#ifndef CALLBACK
#define CALLBACK
#endif
#ifndef NTAPI
#define NTAPI
#endif
#ifndef WINBASEAPI
#define WINBASEAPI
#endif
#ifndef CONST
#define CONST const
#endif
#ifndef VOID
#define VOID void
#endif

#ifndef NULL
#define NULL ((void *)0)
#endif
#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

/* ---------------------------------------------------------------------------------------- */
/* Basic Windows types                                                                       */
/* ---------------------------------------------------------------------------------------- */

typedef void *PVOID, *LPVOID;
typedef const void *LPCVOID, *PCVOID;

typedef char CHAR, *PCHAR, *LPSTR;
typedef const char *LPCSTR, *PCSTR;
typedef unsigned char UCHAR, *PUCHAR;
typedef uint8_t BYTE, *PBYTE, *LPBYTE;
typedef BYTE BOOLEAN, *PBOOLEAN;
typedef int16_t SHORT, *PSHORT;
typedef uint16_t USHORT, *PUSHORT;
typedef uint16_t WORD, *PWORD, *LPWORD;
typedef int INT, *PINT, *LPINT;
typedef unsigned int UINT, *PUINT;
typedef int32_t LONG, *PLONG, *LPLONG;
typedef uint32_t ULONG, *PULONG;
typedef uint32_t DWORD, *PDWORD, *LPDWORD;
typedef long long LONGLONG, *PLONGLONG;
typedef unsigned long long ULONGLONG, *PULONGLONG;
typedef unsigned long long DWORD64, *PDWORD64;
typedef unsigned long long ULONG64, *PULONG64;
typedef long long LONG64, *PLONG64;

typedef intptr_t INT_PTR, *PINT_PTR;
typedef uintptr_t UINT_PTR, *PUINT_PTR;
typedef intptr_t LONG_PTR, *PLONG_PTR;
typedef uintptr_t ULONG_PTR, *PULONG_PTR;
typedef ULONG_PTR DWORD_PTR, *PDWORD_PTR;
typedef size_t SIZE_T, *PSIZE_T;
typedef LONG_PTR SSIZE_T, *PSSIZE_T;

typedef int BOOL, *PBOOL, *LPBOOL;
typedef void *HANDLE;
typedef HANDLE *PHANDLE;
typedef LONG NTSTATUS, *PNTSTATUS;

/* The names the Win32 metadata (and the windows-sys crate) gives the flag parameters. */
typedef DWORD WIN32_ERROR;
typedef DWORD VIRTUAL_ALLOCATION_TYPE;
typedef DWORD VIRTUAL_FREE_TYPE;
typedef DWORD PAGE_PROTECTION_FLAGS;
typedef DWORD PAGE_TYPE;
typedef DWORD UNMAP_VIEW_OF_FILE_FLAGS;
typedef int32_t OFFER_PRIORITY;
typedef WORD PROCESSOR_ARCHITECTURE;

/* ---------------------------------------------------------------------------------------- */
/* Allocation types (VirtualAlloc), free types (VirtualFree), region states and types        */
/* ---------------------------------------------------------------------------------------- */

#define MEM_COMMIT                      0x00001000
#define MEM_RESERVE                     0x00002000
#define MEM_REPLACE_PLACEHOLDER         0x00004000
#define MEM_RESERVE_PLACEHOLDER         0x00040000
#define MEM_RESET                       0x00080000
#define MEM_TOP_DOWN                    0x00100000
#define MEM_WRITE_WATCH                 0x00200000
#define MEM_PHYSICAL                    0x00400000
#define MEM_ROTATE                      0x00800000
#define MEM_RESET_UNDO                  0x01000000 /* SDK value; Wine's 0x10000000 is wrong */
#define MEM_LARGE_PAGES                 0x20000000
#define MEM_4MB_PAGES                   0x80000000
#define MEM_64K_PAGES                   (MEM_LARGE_PAGES | MEM_PHYSICAL)
#define AT_ROUND_TO_PAGE                0x40000000

#define MEM_DECOMMIT                    0x00004000
#define MEM_RELEASE                     0x00008000
#define MEM_COALESCE_PLACEHOLDERS       0x00000001
#define MEM_PRESERVE_PLACEHOLDER        0x00000002
#define MEM_UNMAP_WITH_TRANSIENT_BOOST  0x00000001

/* MEMORY_BASIC_INFORMATION.State and .Type */
#define MEM_FREE                        0x00010000
#define MEM_PRIVATE                     0x00020000
#define MEM_MAPPED                      0x00040000
#define MEM_IMAGE                       0x01000000

#define WRITE_WATCH_FLAG_RESET          0x00000001

/* ---------------------------------------------------------------------------------------- */
/* Page protections                                                                          */
/* ---------------------------------------------------------------------------------------- */

#define PAGE_NOACCESS                   0x01
#define PAGE_READONLY                   0x02
#define PAGE_READWRITE                  0x04
#define PAGE_WRITECOPY                  0x08
#define PAGE_EXECUTE                    0x10
#define PAGE_EXECUTE_READ               0x20
#define PAGE_EXECUTE_READWRITE          0x40
#define PAGE_EXECUTE_WRITECOPY          0x80
#define PAGE_GUARD                      0x100
#define PAGE_NOCACHE                    0x200
#define PAGE_WRITECOMBINE               0x400
#define PAGE_TARGETS_INVALID            0x40000000
#define PAGE_TARGETS_NO_UPDATE          0x40000000

/* Section attributes (CreateFileMapping's flProtect) */
#define SEC_FILE                        0x00800000
#define SEC_IMAGE                       0x01000000
#define SEC_RESERVE                     0x04000000
#define SEC_COMMIT                      0x08000000
#define SEC_NOCACHE                     0x10000000
#define SEC_WRITECOMBINE                0x40000000
#define SEC_LARGE_PAGES                 0x80000000

/* ---------------------------------------------------------------------------------------- */
/* Win32 error codes (GetLastError)                                                          */
/* ---------------------------------------------------------------------------------------- */

#define ERROR_SUCCESS                   0
#define NO_ERROR                        0
#define ERROR_ACCESS_DENIED             5
#define ERROR_INVALID_HANDLE            6
#define ERROR_NOT_ENOUGH_MEMORY         8
#define ERROR_OUTOFMEMORY               14
#define ERROR_BAD_LENGTH                24
#define ERROR_NOT_SUPPORTED             50
#define ERROR_UNEXP_NET_ERR             59
#define ERROR_INVALID_PARAMETER         87
#define ERROR_CALL_NOT_IMPLEMENTED      120
#define ERROR_NOT_LOCKED                158
#define ERROR_PARTIAL_COPY              299
#define ERROR_MR_MID_NOT_FOUND          317
#define ERROR_INVALID_ADDRESS           487
#define ERROR_NOACCESS                  998
#define ERROR_SWAPERROR                 999
#define ERROR_STACK_OVERFLOW            1001
#define ERROR_INVALID_FLAGS             1004
#define ERROR_MAPPED_ALIGNMENT          1132
#define ERROR_PRIVILEGE_NOT_HELD        1314
#define ERROR_INTERNAL_ERROR            1359 /* a call that failed inside virtmem (a bug) */
#define ERROR_BUSY                      170  /* ReclaimVirtualMemory: contents were discarded */
#define ERROR_NO_SYSTEM_RESOURCES       1450
#define ERROR_WORKING_SET_QUOTA         1453
#define ERROR_COMMITMENT_LIMIT          1455
#define ERROR_INVALID_USER_BUFFER       1784

/* ---------------------------------------------------------------------------------------- */
/* NTSTATUS values                                                                           */
/* ---------------------------------------------------------------------------------------- */

#define STATUS_SUCCESS                  ((NTSTATUS)0x00000000)
#define STATUS_WORKING_SET_LIMIT_RANGE  ((NTSTATUS)0x40000002)
#define STATUS_WAS_LOCKED               ((NTSTATUS)0x40000019)
#define STATUS_GUARD_PAGE_VIOLATION     ((NTSTATUS)0x80000001)
#define STATUS_PARTIAL_COPY             ((NTSTATUS)0x8000000D)
#define STATUS_INVALID_INFO_CLASS       ((NTSTATUS)0xC0000003)
#define STATUS_INFO_LENGTH_MISMATCH     ((NTSTATUS)0xC0000004)
#define STATUS_ACCESS_VIOLATION         ((NTSTATUS)0xC0000005)
#define STATUS_IN_PAGE_ERROR            ((NTSTATUS)0xC0000006)
#define STATUS_INVALID_HANDLE           ((NTSTATUS)0xC0000008)
#define STATUS_INVALID_PARAMETER        ((NTSTATUS)0xC000000D)
#define STATUS_NO_MEMORY                ((NTSTATUS)0xC0000017)
#define STATUS_CONFLICTING_ADDRESSES    ((NTSTATUS)0xC0000018)
#define STATUS_NOT_MAPPED_VIEW          ((NTSTATUS)0xC0000019)
#define STATUS_UNABLE_TO_FREE_VM        ((NTSTATUS)0xC000001A)
#define STATUS_UNABLE_TO_DELETE_SECTION ((NTSTATUS)0xC000001B)
#define STATUS_INVALID_VIEW_SIZE        ((NTSTATUS)0xC000001F)
#define STATUS_ALREADY_COMMITTED        ((NTSTATUS)0xC0000021)
#define STATUS_ACCESS_DENIED            ((NTSTATUS)0xC0000022)
#define STATUS_NOT_LOCKED               ((NTSTATUS)0xC000002A)
#define STATUS_UNABLE_TO_DECOMMIT_VM    ((NTSTATUS)0xC000002C)
#define STATUS_NOT_COMMITTED            ((NTSTATUS)0xC000002D)
#define STATUS_SECTION_TOO_BIG          ((NTSTATUS)0xC0000040)
#define STATUS_INVALID_PAGE_PROTECTION  ((NTSTATUS)0xC0000045)
#define STATUS_INCOMPATIBLE_FILE_MAP    ((NTSTATUS)0xC000004D)
#define STATUS_PRIVILEGE_NOT_HELD       ((NTSTATUS)0xC0000061)
#define STATUS_RANGE_NOT_LOCKED         ((NTSTATUS)0xC000007E)
#define STATUS_FREE_VM_NOT_AT_BASE      ((NTSTATUS)0xC000009F)
#define STATUS_MEMORY_NOT_ALLOCATED     ((NTSTATUS)0xC00000A0)
#define STATUS_WORKING_SET_QUOTA        ((NTSTATUS)0xC00000A1)
#define STATUS_NOT_SUPPORTED            ((NTSTATUS)0xC00000BB)
#define STATUS_INVALID_PARAMETER_1      ((NTSTATUS)0xC00000EF)
#define STATUS_INVALID_PARAMETER_2      ((NTSTATUS)0xC00000F0)
#define STATUS_INVALID_PARAMETER_3      ((NTSTATUS)0xC00000F1)
#define STATUS_INVALID_PARAMETER_4      ((NTSTATUS)0xC00000F2)
#define STATUS_INVALID_PARAMETER_5      ((NTSTATUS)0xC00000F3)
#define STATUS_INVALID_PARAMETER_6      ((NTSTATUS)0xC00000F4)
#define STATUS_INVALID_PARAMETER_7      ((NTSTATUS)0xC00000F5)
#define STATUS_INVALID_PARAMETER_8      ((NTSTATUS)0xC00000F6)
#define STATUS_INVALID_PARAMETER_9      ((NTSTATUS)0xC00000F7)
#define STATUS_INVALID_PARAMETER_10     ((NTSTATUS)0xC00000F8)
#define STATUS_INVALID_PARAMETER_11     ((NTSTATUS)0xC00000F9)
#define STATUS_INVALID_PARAMETER_12     ((NTSTATUS)0xC00000FA)
#define STATUS_STACK_OVERFLOW           ((NTSTATUS)0xC00000FD)
#define STATUS_COMMITMENT_LIMIT         ((NTSTATUS)0xC000012D)
#define STATUS_INVALID_ADDRESS          ((NTSTATUS)0xC0000141)
#define STATUS_MAPPED_ALIGNMENT         ((NTSTATUS)0xC0000220)

/* Access-violation kinds (EXCEPTION_RECORD.ExceptionInformation[0]) */
#define EXCEPTION_READ_FAULT            0
#define EXCEPTION_WRITE_FAULT           1
#define EXCEPTION_EXECUTE_FAULT         8

/* ---------------------------------------------------------------------------------------- */
/* Processors (SYSTEM_INFO) and the current-process pseudo-handle                            */
/* ---------------------------------------------------------------------------------------- */

#define PROCESSOR_ARCHITECTURE_INTEL         0
#define PROCESSOR_ARCHITECTURE_ARM           5
#define PROCESSOR_ARCHITECTURE_IA64          6
#define PROCESSOR_ARCHITECTURE_AMD64         9
#define PROCESSOR_ARCHITECTURE_IA32_ON_WIN64 10
#define PROCESSOR_ARCHITECTURE_ARM64         12
#define PROCESSOR_ARCHITECTURE_UNKNOWN       0xFFFF

#define PROCESSOR_INTEL_386             386
#define PROCESSOR_INTEL_486             486
#define PROCESSOR_INTEL_PENTIUM         586
#define PROCESSOR_INTEL_IA64            2200
#define PROCESSOR_AMD_X8664             8664

/* What GetCurrentProcess() returns, (HANDLE)-1 (a virtmem name, not an SDK one). */
#define CURRENT_PROCESS                 ((HANDLE)(LONG_PTR)-1)

/* ---------------------------------------------------------------------------------------- */
/* Structures                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* What VirtualQuery fills in: 48 bytes on 64-bit targets, 28 on 32-bit ones. */
typedef struct _MEMORY_BASIC_INFORMATION {
    PVOID BaseAddress;
    PVOID AllocationBase;
    DWORD AllocationProtect;
#if (defined(__SIZEOF_POINTER__) && __SIZEOF_POINTER__ == 8) || (defined(UINTPTR_MAX) && UINTPTR_MAX > 0xFFFFFFFFu)
    WORD PartitionId;
#endif
    SIZE_T RegionSize;
    DWORD State;
    DWORD Protect;
    DWORD Type;
} MEMORY_BASIC_INFORMATION, *PMEMORY_BASIC_INFORMATION;

typedef struct _MEMORY_BASIC_INFORMATION32 {
    DWORD BaseAddress;
    DWORD AllocationBase;
    DWORD AllocationProtect;
    DWORD RegionSize;
    DWORD State;
    DWORD Protect;
    DWORD Type;
} MEMORY_BASIC_INFORMATION32, *PMEMORY_BASIC_INFORMATION32;

/* The SDK aligns this one to 16; windows-sys (and so virtmem) to 8. The size is 48 either way. */
typedef struct _MEMORY_BASIC_INFORMATION64 {
    ULONGLONG BaseAddress;
    ULONGLONG AllocationBase;
    DWORD AllocationProtect;
    DWORD __alignment1;
    ULONGLONG RegionSize;
    DWORD State;
    DWORD Protect;
    DWORD Type;
    DWORD __alignment2;
} MEMORY_BASIC_INFORMATION64, *PMEMORY_BASIC_INFORMATION64;

/* What GetSystemInfo fills in. The anonymous union lets Windows code write
   si.wProcessorArchitecture or si.dwOemId directly (C11, or GNU C). */
typedef struct _SYSTEM_INFO {
    union {
        DWORD dwOemId;
        struct {
            WORD wProcessorArchitecture;
            WORD wReserved;
        };
    };
    DWORD dwPageSize;
    LPVOID lpMinimumApplicationAddress;
    LPVOID lpMaximumApplicationAddress;
    DWORD_PTR dwActiveProcessorMask;
    DWORD dwNumberOfProcessors;
    DWORD dwProcessorType;
    DWORD dwAllocationGranularity;
    WORD wProcessorLevel;
    WORD wProcessorRevision;
} SYSTEM_INFO, *LPSYSTEM_INFO;

/* VirtualAlloc2 extended parameters. */
typedef enum MEM_EXTENDED_PARAMETER_TYPE {
    MemExtendedParameterInvalidType = 0,
    MemExtendedParameterAddressRequirements = 1,
    MemExtendedParameterNumaNode = 2,
    MemExtendedParameterPartitionHandle = 3,
    MemExtendedParameterUserPhysicalHandle = 4,
    MemExtendedParameterAttributeFlags = 5,
    MemExtendedParameterImageMachine = 6,
    MemExtendedParameterMax = 7
} MEM_EXTENDED_PARAMETER_TYPE, *PMEM_EXTENDED_PARAMETER_TYPE;

#define MEM_EXTENDED_PARAMETER_TYPE_BITS 8

typedef struct MEM_EXTENDED_PARAMETER {
    struct {
        DWORD64 Type : MEM_EXTENDED_PARAMETER_TYPE_BITS;
        DWORD64 Reserved : 64 - MEM_EXTENDED_PARAMETER_TYPE_BITS;
    };
    union {
        DWORD64 ULong64;
        PVOID Pointer;
        SIZE_T Size;
        HANDLE Handle;
        DWORD ULong;
    };
} MEM_EXTENDED_PARAMETER, *PMEM_EXTENDED_PARAMETER;

typedef struct _MEM_ADDRESS_REQUIREMENTS {
    PVOID LowestStartingAddress;
    PVOID HighestEndingAddress;
    SIZE_T Alignment;
} MEM_ADDRESS_REQUIREMENTS, *PMEM_ADDRESS_REQUIREMENTS;

/* One range for PrefetchVirtualMemory. */
typedef struct _WIN32_MEMORY_RANGE_ENTRY {
    PVOID VirtualAddress;
    SIZE_T NumberOfBytes;
} WIN32_MEMORY_RANGE_ENTRY, *PWIN32_MEMORY_RANGE_ENTRY;

/* ---------------------------------------------------------------------------------------- */
/* Functions (one prototype a line: c_header.rs reads them)                                  */
/* ---------------------------------------------------------------------------------------- */

/* memoryapi.h */
WINBASEAPI LPVOID WINAPI VirtualAlloc(LPVOID lpAddress, SIZE_T dwSize, DWORD flAllocationType, DWORD flProtect);
WINBASEAPI LPVOID WINAPI VirtualAllocEx(HANDLE hProcess, LPVOID lpAddress, SIZE_T dwSize, DWORD flAllocationType, DWORD flProtect);
WINBASEAPI LPVOID WINAPI VirtualAllocExNuma(HANDLE hProcess, LPVOID lpAddress, SIZE_T dwSize, DWORD flAllocationType, DWORD flProtect, DWORD nndPreferred);
WINBASEAPI PVOID WINAPI VirtualAllocFromApp(PVOID BaseAddress, SIZE_T Size, ULONG AllocationType, ULONG Protection);
WINBASEAPI PVOID WINAPI VirtualAlloc2(HANDLE Process, PVOID BaseAddress, SIZE_T Size, ULONG AllocationType, ULONG PageProtection, MEM_EXTENDED_PARAMETER *ExtendedParameters, ULONG ParameterCount);
WINBASEAPI PVOID WINAPI VirtualAlloc2FromApp(HANDLE Process, PVOID BaseAddress, SIZE_T Size, ULONG AllocationType, ULONG PageProtection, MEM_EXTENDED_PARAMETER *ExtendedParameters, ULONG ParameterCount);
WINBASEAPI BOOL WINAPI VirtualFree(LPVOID lpAddress, SIZE_T dwSize, DWORD dwFreeType);
WINBASEAPI BOOL WINAPI VirtualFreeEx(HANDLE hProcess, LPVOID lpAddress, SIZE_T dwSize, DWORD dwFreeType);
WINBASEAPI BOOL WINAPI VirtualProtect(LPVOID lpAddress, SIZE_T dwSize, DWORD flNewProtect, PDWORD lpflOldProtect);
WINBASEAPI BOOL WINAPI VirtualProtectEx(HANDLE hProcess, LPVOID lpAddress, SIZE_T dwSize, DWORD flNewProtect, PDWORD lpflOldProtect);
WINBASEAPI BOOL WINAPI VirtualProtectFromApp(PVOID Address, SIZE_T Size, ULONG NewProtection, PULONG OldProtection);
WINBASEAPI SIZE_T WINAPI VirtualQuery(LPCVOID lpAddress, PMEMORY_BASIC_INFORMATION lpBuffer, SIZE_T dwLength);
WINBASEAPI SIZE_T WINAPI VirtualQueryEx(HANDLE hProcess, LPCVOID lpAddress, PMEMORY_BASIC_INFORMATION lpBuffer, SIZE_T dwLength);
WINBASEAPI BOOL WINAPI VirtualLock(LPVOID lpAddress, SIZE_T dwSize);
WINBASEAPI BOOL WINAPI VirtualUnlock(LPVOID lpAddress, SIZE_T dwSize);
WINBASEAPI BOOL WINAPI VirtualUnlockEx(HANDLE Process, LPVOID Address, SIZE_T Size);
WINBASEAPI UINT WINAPI GetWriteWatch(DWORD dwFlags, PVOID lpBaseAddress, SIZE_T dwRegionSize, PVOID *lpAddresses, ULONG_PTR *lpdwCount, LPDWORD lpdwGranularity);
WINBASEAPI UINT WINAPI ResetWriteWatch(LPVOID lpBaseAddress, SIZE_T dwRegionSize);
WINBASEAPI SIZE_T WINAPI GetLargePageMinimum(VOID);

/* sysinfoapi.h: the machine's memory. Physical memory from the kernel; the "page file" is the
   commit limit (vm.overcommit_memory = 2: the kernel's CommitLimit, else physical memory plus
   swap) and what is left of it; the virtual figures are this process's address space. */
typedef struct _MEMORYSTATUSEX {
    DWORD dwLength;
    DWORD dwMemoryLoad;
    ULONGLONG ullTotalPhys;
    ULONGLONG ullAvailPhys;
    ULONGLONG ullTotalPageFile;
    ULONGLONG ullAvailPageFile;
    ULONGLONG ullTotalVirtual;
    ULONGLONG ullAvailVirtual;
    ULONGLONG ullAvailExtendedVirtual;
} MEMORYSTATUSEX, *LPMEMORYSTATUSEX;
typedef struct _MEMORYSTATUS {
    DWORD dwLength;
    DWORD dwMemoryLoad;
    SIZE_T dwTotalPhys;
    SIZE_T dwAvailPhys;
    SIZE_T dwTotalPageFile;
    SIZE_T dwAvailPageFile;
    SIZE_T dwTotalVirtual;
    SIZE_T dwAvailVirtual;
} MEMORYSTATUS, *LPMEMORYSTATUS;
WINBASEAPI BOOL WINAPI GlobalMemoryStatusEx(LPMEMORYSTATUSEX lpBuffer);
WINBASEAPI VOID WINAPI GlobalMemoryStatus(LPMEMORYSTATUS lpBuffer);
WINBASEAPI BOOL WINAPI GetPhysicallyInstalledSystemMemory(PULONGLONG TotalMemoryInKilobytes);

/* The memory routines of winnt.h / minwinbase.h. virtmem exports the Rtl* functions (as
   kernel32 does); as in Windows' headers, the Rtl*Memory names are then macros over the C
   library (declared first, so the prototypes are not macro-expanded; `&RtlMoveMemory` still
   names the export) and ZeroMemory / CopyMemory / MoveMemory / FillMemory / SecureZeroMemory
   name the Rtl* ones. SecureZeroMemory is the exported RtlSecureZeroMemory, whose volatile
   stores no compiler can elide. */
WINBASEAPI VOID WINAPI RtlZeroMemory(PVOID Destination, SIZE_T Length);
WINBASEAPI VOID WINAPI RtlFillMemory(PVOID Destination, SIZE_T Length, BYTE Fill);
WINBASEAPI VOID WINAPI RtlMoveMemory(PVOID Destination, LPCVOID Source, SIZE_T Length);
WINBASEAPI VOID WINAPI RtlCopyMemory(PVOID Destination, LPCVOID Source, SIZE_T Length);
WINBASEAPI PVOID WINAPI RtlSecureZeroMemory(PVOID ptr, SIZE_T cnt);
WINBASEAPI SIZE_T WINAPI RtlCompareMemory(LPCVOID Source1, LPCVOID Source2, SIZE_T Length);
#define RtlEqualMemory(Destination, Source, Length) (!memcmp((Destination), (Source), (Length)))
#define RtlMoveMemory(Destination, Source, Length) memmove((Destination), (Source), (Length))
#define RtlCopyMemory(Destination, Source, Length) memcpy((Destination), (Source), (Length))
#define RtlFillMemory(Destination, Length, Fill) memset((Destination), (Fill), (Length))
#define RtlZeroMemory(Destination, Length) memset((Destination), 0, (Length))
#define EqualMemory RtlEqualMemory
#define MoveMemory RtlMoveMemory
#define CopyMemory RtlCopyMemory
#define FillMemory RtlFillMemory
#define ZeroMemory RtlZeroMemory
#define SecureZeroMemory RtlSecureZeroMemory
WINBASEAPI DWORD WINAPI DiscardVirtualMemory(PVOID VirtualAddress, SIZE_T Size);
WINBASEAPI DWORD WINAPI OfferVirtualMemory(PVOID VirtualAddress, SIZE_T Size, OFFER_PRIORITY Priority);
WINBASEAPI DWORD WINAPI ReclaimVirtualMemory(LPCVOID VirtualAddress, SIZE_T Size);
WINBASEAPI BOOL WINAPI PrefetchVirtualMemory(HANDLE hProcess, ULONG_PTR NumberOfEntries, PWIN32_MEMORY_RANGE_ENTRY VirtualAddresses, ULONG Flags);
WINBASEAPI BOOL WINAPI AllocateUserPhysicalPages(HANDLE hProcess, PULONG_PTR NumberOfPages, PULONG_PTR PageArray);
WINBASEAPI BOOL WINAPI AllocateUserPhysicalPagesNuma(HANDLE hProcess, PULONG_PTR NumberOfPages, PULONG_PTR PageArray, DWORD nndPreferred);
WINBASEAPI BOOL WINAPI MapUserPhysicalPages(PVOID VirtualAddress, ULONG_PTR NumberOfPages, PULONG_PTR PageArray);
WINBASEAPI BOOL WINAPI MapUserPhysicalPagesScatter(PVOID *VirtualAddresses, ULONG_PTR NumberOfPages, PULONG_PTR PageArray);
WINBASEAPI BOOL WINAPI FreeUserPhysicalPages(HANDLE hProcess, PULONG_PTR NumberOfPages, PULONG_PTR PageArray);

/* sysinfoapi.h */
WINBASEAPI VOID WINAPI GetSystemInfo(LPSYSTEM_INFO lpSystemInfo);
WINBASEAPI VOID WINAPI GetNativeSystemInfo(LPSYSTEM_INFO lpSystemInfo);

/* processthreadsapi.h */
WINBASEAPI HANDLE WINAPI GetCurrentProcess(VOID);
WINBASEAPI BOOL WINAPI FlushInstructionCache(HANDLE hProcess, LPCVOID lpBaseAddress, SIZE_T dwSize);

/* errhandlingapi.h: the last error is per thread */
WINBASEAPI DWORD WINAPI GetLastError(VOID);
WINBASEAPI VOID WINAPI SetLastError(DWORD dwErrCode);

/* ---------------------------------------------------------------------------------------- */
/* virtmem's own additions                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Guard pages: Linux has no structured exception handling, so a C program that wants to see
   STATUS_GUARD_PAGE_VIOLATION registers one process-wide handler. It gets the faulting
   address and the access (EXCEPTION_READ_FAULT, EXCEPTION_WRITE_FAULT or
   EXCEPTION_EXECUTE_FAULT) and returns non-zero to continue (the access is retried and
   succeeds, the guard being gone) or 0 to treat the violation as unhandled. It runs in signal
   context: only async-signal-safe work. NULL (the default): an unhandled violation prints
   "guard page violation at 0x..." and aborts. */
typedef int (*VIRTMEM_GUARD_PAGE_HANDLER)(PVOID address, DWORD access);
WINBASEAPI VOID WINAPI virtmem_set_guard_page_handler(VIRTMEM_GUARD_PAGE_HANDLER handler);

/* ---- files (sections.md §17) ---- */
/* The minimal file API that file-backed sections need (fileapi.h, handleapi.h). Paths are
   Linux paths and '\' is accepted as a separator; A strings are UTF-8, W strings UTF-16 (WCHAR
   is 16 bits here, as on Windows, not wchar_t). File handles share one table with section
   handles. I/O is synchronous: lpOverlapped must be NULL (else ERROR_INVALID_PARAMETER). Share
   modes are enforced between the handles of this process only. */

typedef uint16_t WCHAR, *PWCHAR, *LPWSTR, *PWSTR;
typedef const WCHAR *LPCWSTR, *PCWSTR;
typedef CHAR *PSTR;

/* A 64-bit signed integer, also seen as two 32-bit halves (as in the SDK). */
typedef union _LARGE_INTEGER {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    struct { LONG HighPart; DWORD LowPart; };
    struct { LONG HighPart; DWORD LowPart; } u;
#else
    struct { DWORD LowPart; LONG HighPart; };
    struct { DWORD LowPart; LONG HighPart; } u;
#endif
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;

/* Accepted and ignored. */
typedef struct _SECURITY_ATTRIBUTES {
    DWORD nLength;
    LPVOID lpSecurityDescriptor;
    BOOL bInheritHandle;
} SECURITY_ATTRIBUTES, *PSECURITY_ATTRIBUTES, *LPSECURITY_ATTRIBUTES;

/* Declared for source compatibility; virtmem's ReadFile/WriteFile require NULL. */
typedef struct _OVERLAPPED {
    ULONG_PTR Internal;
    ULONG_PTR InternalHigh;
    union {
        struct {
            DWORD Offset;
            DWORD OffsetHigh;
        };
        PVOID Pointer;
    };
    HANDLE hEvent;
} OVERLAPPED, *LPOVERLAPPED;

/* Access rights (GENERIC_* map to FILE_GENERIC_* / FILE_ALL_ACCESS) */
#define GENERIC_READ                    0x80000000u
#define GENERIC_WRITE                   0x40000000u
#define GENERIC_EXECUTE                 0x20000000u
#define GENERIC_ALL                     0x10000000u
#define FILE_READ_DATA                  0x0001
#define FILE_WRITE_DATA                 0x0002
#define FILE_APPEND_DATA                0x0004
#define FILE_READ_EA                    0x0008
#define FILE_WRITE_EA                   0x0010
#define FILE_EXECUTE                    0x0020
#define FILE_READ_ATTRIBUTES            0x0080
#define FILE_WRITE_ATTRIBUTES           0x0100
#define DELETE                          0x00010000
#define READ_CONTROL                    0x00020000
#define WRITE_DAC                       0x00040000
#define WRITE_OWNER                     0x00080000
#define SYNCHRONIZE                     0x00100000
#define STANDARD_RIGHTS_REQUIRED        0x000F0000
#define FILE_GENERIC_READ               0x00120089
#define FILE_GENERIC_WRITE              0x00120116
#define FILE_GENERIC_EXECUTE            0x001200A0
#define FILE_ALL_ACCESS                 0x001F01FF

/* Share modes */
#define FILE_SHARE_NONE                 0
#define FILE_SHARE_READ                 0x00000001
#define FILE_SHARE_WRITE                0x00000002
#define FILE_SHARE_DELETE               0x00000004

/* Creation dispositions */
#define CREATE_NEW                      1
#define CREATE_ALWAYS                   2
#define OPEN_EXISTING                   3
#define OPEN_ALWAYS                     4
#define TRUNCATE_EXISTING               5

/* Attributes and flags (only FILE_FLAG_DELETE_ON_CLOSE has an effect) */
#define FILE_ATTRIBUTE_READONLY         0x00000001
#define FILE_ATTRIBUTE_NORMAL           0x00000080
#define FILE_ATTRIBUTE_TEMPORARY        0x00000100
#define FILE_FLAG_DELETE_ON_CLOSE       0x04000000

/* Move methods */
#define FILE_BEGIN                      0
#define FILE_CURRENT                    1
#define FILE_END                        2

#define INVALID_HANDLE_VALUE            ((HANDLE)(LONG_PTR)-1)
#define INVALID_SET_FILE_POINTER        ((DWORD)-1)
#define INVALID_FILE_SIZE               ((DWORD)0xFFFFFFFF)
#define MAX_PATH                        260

/* Error codes of the file API */
#define NO_ERROR                        0
#define ERROR_FILE_NOT_FOUND            2
#define ERROR_PATH_NOT_FOUND            3
#define ERROR_TOO_MANY_OPEN_FILES       4
#define ERROR_WRITE_PROTECT             19
#define ERROR_GEN_FAILURE               31
#define ERROR_SHARING_VIOLATION         32
#define ERROR_LOCK_VIOLATION            33
#define ERROR_FILE_EXISTS               80
#define ERROR_BUFFER_OVERFLOW           111
#define ERROR_DISK_FULL                 112
#define ERROR_NEGATIVE_SEEK             131
#define ERROR_INVALID_NAME              123
#define ERROR_ALREADY_EXISTS            183
#define ERROR_FILENAME_EXCED_RANGE      206
#define ERROR_IO_DEVICE                 1117
#define ERROR_USER_MAPPED_FILE          1224
#define ERROR_CANT_RESOLVE_FILENAME     1921

/* handleapi.h */
WINBASEAPI BOOL WINAPI CloseHandle(HANDLE hObject);

/* fileapi.h */
WINBASEAPI HANDLE WINAPI CreateFileA(LPCSTR lpFileName, DWORD dwDesiredAccess, DWORD dwShareMode, LPSECURITY_ATTRIBUTES lpSecurityAttributes, DWORD dwCreationDisposition, DWORD dwFlagsAndAttributes, HANDLE hTemplateFile);
WINBASEAPI HANDLE WINAPI CreateFileW(LPCWSTR lpFileName, DWORD dwDesiredAccess, DWORD dwShareMode, LPSECURITY_ATTRIBUTES lpSecurityAttributes, DWORD dwCreationDisposition, DWORD dwFlagsAndAttributes, HANDLE hTemplateFile);
WINBASEAPI BOOL WINAPI ReadFile(HANDLE hFile, LPVOID lpBuffer, DWORD nNumberOfBytesToRead, LPDWORD lpNumberOfBytesRead, LPOVERLAPPED lpOverlapped);
WINBASEAPI BOOL WINAPI WriteFile(HANDLE hFile, LPCVOID lpBuffer, DWORD nNumberOfBytesToWrite, LPDWORD lpNumberOfBytesWritten, LPOVERLAPPED lpOverlapped);
WINBASEAPI DWORD WINAPI SetFilePointer(HANDLE hFile, LONG lDistanceToMove, PLONG lpDistanceToMoveHigh, DWORD dwMoveMethod);
WINBASEAPI BOOL WINAPI SetFilePointerEx(HANDLE hFile, LARGE_INTEGER liDistanceToMove, PLARGE_INTEGER lpNewFilePointer, DWORD dwMoveMethod);
WINBASEAPI BOOL WINAPI SetEndOfFile(HANDLE hFile);
WINBASEAPI DWORD WINAPI GetFileSize(HANDLE hFile, LPDWORD lpFileSizeHigh);
WINBASEAPI BOOL WINAPI GetFileSizeEx(HANDLE hFile, PLARGE_INTEGER lpFileSize);
WINBASEAPI BOOL WINAPI FlushFileBuffers(HANDLE hFile);
WINBASEAPI BOOL WINAPI DeleteFileA(LPCSTR lpFileName);
WINBASEAPI BOOL WINAPI DeleteFileW(LPCWSTR lpFileName);
WINBASEAPI DWORD WINAPI GetTempPathA(DWORD nBufferLength, LPSTR lpBuffer);
WINBASEAPI DWORD WINAPI GetTempPathW(DWORD nBufferLength, LPWSTR lpBuffer);
WINBASEAPI UINT WINAPI GetTempFileNameA(LPCSTR lpPathName, LPCSTR lpPrefixString, UINT uUnique, LPSTR lpTempFileName);
WINBASEAPI UINT WINAPI GetTempFileNameW(LPCWSTR lpPathName, LPCWSTR lpPrefixString, UINT uUnique, LPWSTR lpTempFileName);
/* ---- end files ---- */

/* ---- sections (sections.md) ---- */
/* File mapping objects ("sections") and their views: CreateFileMapping*, OpenFileMapping*,
   MapViewOfFile*, UnmapViewOfFile*, FlushViewOfFile, CloseHandle, DuplicateHandle.
   Signatures are the SDK's (memoryapi.h, winbase.h, handleapi.h). The Rust side returns
   MapViewOfFile*'s address as a one-pointer structure (windows-sys'
   MEMORY_MAPPED_VIEW_ADDRESS), which is passed and returned exactly like LPVOID. */

/* Strings: A names are UTF-8; W names are UTF-16 (WCHAR is 16 bits, as on Windows, not the
   32-bit wchar_t of Linux: write W strings as u"..." literals, or arrays of WCHAR).
   The file API's part (sections.md §17, which defines OPEN_EXISTING) declares WCHAR and
   SECURITY_ATTRIBUTES too: they are defined here only when that part has not come first. */
#if !defined(VIRTMEM_HAVE_WCHAR) && !defined(OPEN_EXISTING)
#define VIRTMEM_HAVE_WCHAR
typedef uint16_t WCHAR, *PWCHAR;
typedef WCHAR *LPWSTR, *PWSTR;
typedef const WCHAR *LPCWSTR, *PCWSTR;
#endif

#ifndef VIRTMEM_HAVE_LPHANDLE
#define VIRTMEM_HAVE_LPHANDLE
typedef HANDLE *LPHANDLE;
#endif

/* The security descriptor is ignored; bInheritHandle has no effect (virtmem creates no
   processes). */
#if !defined(VIRTMEM_HAVE_SECURITY_ATTRIBUTES) && !defined(OPEN_EXISTING)
#define VIRTMEM_HAVE_SECURITY_ATTRIBUTES
typedef struct _SECURITY_ATTRIBUTES {
    DWORD nLength;
    LPVOID lpSecurityDescriptor;
    BOOL bInheritHandle;
} SECURITY_ATTRIBUTES, *PSECURITY_ATTRIBUTES, *LPSECURITY_ATTRIBUTES;
#endif

/* Names shared with the file API are defined only once, whichever part comes first. */
#ifndef INVALID_HANDLE_VALUE
#define INVALID_HANDLE_VALUE            ((HANDLE)(LONG_PTR)-1)
#endif
#ifndef STANDARD_RIGHTS_REQUIRED
#define STANDARD_RIGHTS_REQUIRED        0x000F0000
#endif
#ifndef NUMA_NO_PREFERRED_NODE
#define NUMA_NO_PREFERRED_NODE          0xFFFFFFFF
#endif

/* Section access rights (a handle's access mask) */
#define SECTION_QUERY                   0x0001
#define SECTION_MAP_WRITE               0x0002
#define SECTION_MAP_READ                0x0004
#define SECTION_MAP_EXECUTE             0x0008
#define SECTION_EXTEND_SIZE             0x0010
#define SECTION_MAP_EXECUTE_EXPLICIT    0x0020
#define SECTION_ALL_ACCESS              0x000F001F

/* MapViewOfFile*'s dwDesiredAccess (and OpenFileMapping's / CreateFileMapping2's access) */
#define FILE_MAP_COPY                   0x00000001
#define FILE_MAP_WRITE                  0x00000002
#define FILE_MAP_READ                   0x00000004
#define FILE_MAP_EXECUTE                0x00000020
#define FILE_MAP_ALL_ACCESS             0x000F001F
#define FILE_MAP_LARGE_PAGES            0x20000000
#define FILE_MAP_TARGETS_INVALID        0x40000000
#define FILE_MAP_RESERVE                0x80000000

/* SEC_FILE ... SEC_LARGE_PAGES are with the page protections above. */
#define SEC_IMAGE_NO_EXECUTE            0x11000000

/* DuplicateHandle's dwOptions */
#define DUPLICATE_CLOSE_SOURCE          0x00000001
#define DUPLICATE_SAME_ACCESS           0x00000002

/* Error codes of sections (and of files) */
#ifndef ERROR_FILE_NOT_FOUND
#define ERROR_FILE_NOT_FOUND            2
#endif
#ifndef ERROR_PATH_NOT_FOUND
#define ERROR_PATH_NOT_FOUND            3
#endif
#ifndef ERROR_ALREADY_EXISTS
#define ERROR_ALREADY_EXISTS            183
#endif
#ifndef ERROR_BAD_EXE_FORMAT
#define ERROR_BAD_EXE_FORMAT            193
#endif
#ifndef ERROR_FILENAME_EXCED_RANGE
#define ERROR_FILENAME_EXCED_RANGE      206
#endif
#ifndef ERROR_FILE_INVALID
#define ERROR_FILE_INVALID              1006
#endif
#ifndef ERROR_USER_MAPPED_FILE
#define ERROR_USER_MAPPED_FILE          1224
#endif

/* memoryapi.h, winbase.h: sections and views */
WINBASEAPI HANDLE WINAPI CreateFileMappingA(HANDLE hFile, LPSECURITY_ATTRIBUTES lpFileMappingAttributes, DWORD flProtect, DWORD dwMaximumSizeHigh, DWORD dwMaximumSizeLow, LPCSTR lpName);
WINBASEAPI HANDLE WINAPI CreateFileMappingW(HANDLE hFile, LPSECURITY_ATTRIBUTES lpFileMappingAttributes, DWORD flProtect, DWORD dwMaximumSizeHigh, DWORD dwMaximumSizeLow, LPCWSTR lpName);
WINBASEAPI HANDLE WINAPI CreateFileMappingNumaA(HANDLE hFile, LPSECURITY_ATTRIBUTES lpFileMappingAttributes, DWORD flProtect, DWORD dwMaximumSizeHigh, DWORD dwMaximumSizeLow, LPCSTR lpName, DWORD nndPreferred);
WINBASEAPI HANDLE WINAPI CreateFileMappingNumaW(HANDLE hFile, LPSECURITY_ATTRIBUTES lpFileMappingAttributes, DWORD flProtect, DWORD dwMaximumSizeHigh, DWORD dwMaximumSizeLow, LPCWSTR lpName, DWORD nndPreferred);
WINBASEAPI HANDLE WINAPI CreateFileMappingFromApp(HANDLE hFile, PSECURITY_ATTRIBUTES SecurityAttributes, ULONG PageProtection, ULONG64 MaximumSize, PCWSTR Name);
WINBASEAPI HANDLE WINAPI CreateFileMapping2(HANDLE File, SECURITY_ATTRIBUTES *SecurityAttributes, ULONG DesiredAccess, ULONG PageProtection, ULONG AllocationAttributes, ULONG64 MaximumSize, PCWSTR Name, MEM_EXTENDED_PARAMETER *ExtendedParameters, ULONG ParameterCount);
WINBASEAPI HANDLE WINAPI OpenFileMappingA(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCSTR lpName);
WINBASEAPI HANDLE WINAPI OpenFileMappingW(DWORD dwDesiredAccess, BOOL bInheritHandle, LPCWSTR lpName);
WINBASEAPI LPVOID WINAPI MapViewOfFile(HANDLE hFileMappingObject, DWORD dwDesiredAccess, DWORD dwFileOffsetHigh, DWORD dwFileOffsetLow, SIZE_T dwNumberOfBytesToMap);
WINBASEAPI LPVOID WINAPI MapViewOfFileEx(HANDLE hFileMappingObject, DWORD dwDesiredAccess, DWORD dwFileOffsetHigh, DWORD dwFileOffsetLow, SIZE_T dwNumberOfBytesToMap, LPVOID lpBaseAddress);
WINBASEAPI LPVOID WINAPI MapViewOfFileExNuma(HANDLE hFileMappingObject, DWORD dwDesiredAccess, DWORD dwFileOffsetHigh, DWORD dwFileOffsetLow, SIZE_T dwNumberOfBytesToMap, LPVOID lpBaseAddress, DWORD nndPreferred);
WINBASEAPI PVOID WINAPI MapViewOfFileFromApp(HANDLE hFileMappingObject, ULONG DesiredAccess, ULONG64 FileOffset, SIZE_T NumberOfBytesToMap);
WINBASEAPI PVOID WINAPI MapViewOfFile3(HANDLE FileMapping, HANDLE Process, PVOID BaseAddress, ULONG64 Offset, SIZE_T ViewSize, ULONG AllocationType, ULONG PageProtection, MEM_EXTENDED_PARAMETER *ExtendedParameters, ULONG ParameterCount);
WINBASEAPI PVOID WINAPI MapViewOfFile3FromApp(HANDLE FileMapping, HANDLE Process, PVOID BaseAddress, ULONG64 Offset, SIZE_T ViewSize, ULONG AllocationType, ULONG PageProtection, MEM_EXTENDED_PARAMETER *ExtendedParameters, ULONG ParameterCount);
WINBASEAPI PVOID WINAPI MapViewOfFileNuma2(HANDLE FileMappingHandle, HANDLE ProcessHandle, ULONG64 Offset, PVOID BaseAddress, SIZE_T ViewSize, ULONG AllocationType, ULONG PageProtection, ULONG PreferredNode);
WINBASEAPI BOOL WINAPI UnmapViewOfFile(LPCVOID lpBaseAddress);
WINBASEAPI BOOL WINAPI UnmapViewOfFileEx(PVOID BaseAddress, ULONG UnmapFlags);
WINBASEAPI BOOL WINAPI UnmapViewOfFile2(HANDLE Process, PVOID BaseAddress, ULONG UnmapFlags);
WINBASEAPI BOOL WINAPI FlushViewOfFile(LPCVOID lpBaseAddress, SIZE_T dwNumberOfBytesToFlush);

/* The names without A or W: W when UNICODE is defined, as in the SDK. */
#ifdef UNICODE
#define CreateFileMapping               CreateFileMappingW
#define CreateFileMappingNuma           CreateFileMappingNumaW
#define OpenFileMapping                 OpenFileMappingW
#else
#define CreateFileMapping               CreateFileMappingA
#define CreateFileMappingNuma           CreateFileMappingNumaA
#define OpenFileMapping                 OpenFileMappingA
#endif

/* handleapi.h: one handle table for sections and files */
WINBASEAPI BOOL WINAPI DuplicateHandle(HANDLE hSourceProcessHandle, HANDLE hSourceHandle, HANDLE hTargetProcessHandle, LPHANDLE lpTargetHandle, DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwOptions);

/* MapViewOfFile2 is an inline function of the SDK header (not an export): MapViewOfFileNuma2
   with no preferred node. */
static __inline__ PVOID MapViewOfFile2(HANDLE FileMappingHandle, HANDLE ProcessHandle, ULONG64 Offset, PVOID BaseAddress, SIZE_T ViewSize, ULONG AllocationType, ULONG PageProtection)
{
    return MapViewOfFileNuma2(FileMappingHandle, ProcessHandle, Offset, BaseAddress, ViewSize,
                              AllocationType, PageProtection, NUMA_NO_PREFERRED_NODE);
}
/* ---- end sections ---- */

/* ---- pointer probes (winbase.h) ---- */
/* Obsolete on Windows, still called by ported code. virtmem answers from page state and never
   touches the memory, so a probe cannot crash; as on Windows, a guard page met reports bad and
   loses its guard. Nonzero means "bad". */
typedef INT_PTR (WINAPI *FARPROC)(void);
WINBASEAPI BOOL WINAPI IsBadReadPtr(LPCVOID lp, UINT_PTR ucb);
WINBASEAPI BOOL WINAPI IsBadWritePtr(LPVOID lp, UINT_PTR ucb);
WINBASEAPI BOOL WINAPI IsBadHugeReadPtr(LPCVOID lp, UINT_PTR ucb);
WINBASEAPI BOOL WINAPI IsBadHugeWritePtr(LPVOID lp, UINT_PTR ucb);
WINBASEAPI BOOL WINAPI IsBadCodePtr(FARPROC lpfn);
WINBASEAPI BOOL WINAPI IsBadStringPtrA(LPCSTR lpsz, UINT_PTR ucchMax);
WINBASEAPI BOOL WINAPI IsBadStringPtrW(LPCWSTR lpsz, UINT_PTR ucchMax);
#ifdef UNICODE
#define IsBadStringPtr IsBadStringPtrW
#else
#define IsBadStringPtr IsBadStringPtrA
#endif

/* ---- the native layer (winternl.h, ntifs.h, ntddk.h, psapi.h) ---- */
/* Nt* functions return an NTSTATUS and never set the last error; RtlNtStatusToDosError maps
   a status onto the Win32 error the Win32 functions give. NtCurrentProcess() is (HANDLE)-1. */
#define STATUS_OBJECT_NAME_EXISTS       ((NTSTATUS)0x40000000)
#define STATUS_WAS_UNLOCKED             ((NTSTATUS)0x40000017)
#define STATUS_BUFFER_OVERFLOW          ((NTSTATUS)0x80000005)
#define STATUS_UNSUCCESSFUL             ((NTSTATUS)0xC0000001)
#define STATUS_NOT_IMPLEMENTED          ((NTSTATUS)0xC0000002)
#define STATUS_BUFFER_TOO_SMALL         ((NTSTATUS)0xC0000023)
#define STATUS_OBJECT_TYPE_MISMATCH     ((NTSTATUS)0xC0000024)
#define STATUS_OBJECT_NAME_NOT_FOUND    ((NTSTATUS)0xC0000034)
#define STATUS_OBJECT_NAME_COLLISION    ((NTSTATUS)0xC0000035)
#define STATUS_OBJECT_PATH_NOT_FOUND    ((NTSTATUS)0xC000003A)
#define STATUS_SHARING_VIOLATION        ((NTSTATUS)0xC0000043)
#define STATUS_INVALID_IMAGE_FORMAT     ((NTSTATUS)0xC000007B)
#define STATUS_DISK_FULL                ((NTSTATUS)0xC000007F)
#define STATUS_FILE_INVALID             ((NTSTATUS)0xC0000098)
#define STATUS_INSUFFICIENT_RESOURCES   ((NTSTATUS)0xC000009A)
#define STATUS_NOT_SAME_DEVICE          ((NTSTATUS)0xC00000D4)
#define STATUS_INTERNAL_ERROR           ((NTSTATUS)0xC00000E5)
#define STATUS_NAME_TOO_LONG            ((NTSTATUS)0xC0000106)
#define STATUS_MAPPED_FILE_SIZE_ZERO    ((NTSTATUS)0xC000011E)
#define STATUS_USER_MAPPED_FILE         ((NTSTATUS)0xC0000243)
#define NT_SUCCESS(Status)              (((NTSTATUS)(Status)) >= 0)
#ifndef NtCurrentProcess
#define NtCurrentProcess()              ((HANDLE)(LONG_PTR)-1)
#endif

#define ERROR_INVALID_FUNCTION          1
#define ERROR_NOT_SAME_DEVICE           17
#define ERROR_MORE_DATA                 234
#define ERROR_WAS_UNLOCKED              715
#define ERROR_WAS_LOCKED                717

#define OBJ_CASE_INSENSITIVE            0x00000040
#define OBJ_OPENIF                      0x00000080

typedef int32_t MEMORY_INFORMATION_CLASS;
#define MemoryBasicInformation          0
#define MemoryWorkingSetInformation     1
#define MemoryMappedFilenameInformation 2
#define MemoryRegionInformation         3
#define MemoryWorkingSetExInformation   4

#define MAP_PROCESS                     1
#define MAP_SYSTEM                      2

typedef int32_t SECTION_INHERIT;
#define ViewShare                       1
#define ViewUnmap                       2

typedef DWORD ACCESS_MASK;

typedef struct _UNICODE_STRING {
    USHORT Length;
    USHORT MaximumLength;
    PWSTR Buffer;
} UNICODE_STRING, *PUNICODE_STRING;

typedef struct _OBJECT_ATTRIBUTES {
    ULONG Length;
    HANDLE RootDirectory;
    PUNICODE_STRING ObjectName;
    ULONG Attributes;
    PVOID SecurityDescriptor;
    PVOID SecurityQualityOfService;
} OBJECT_ATTRIBUTES, *POBJECT_ATTRIBUTES;

/* NtQueryVirtualMemory(MemoryRegionInformation); QueryVirtualMemoryInformation's name for it. */
typedef struct _WIN32_MEMORY_REGION_INFORMATION {
    PVOID AllocationBase;
    ULONG AllocationProtect;
    union {
        ULONG Flags;
        struct {
            ULONG Private : 1;
            ULONG MappedDataFile : 1;
            ULONG MappedImage : 1;
            ULONG MappedPageFile : 1;
            ULONG MappedPhysical : 1;
            ULONG DirectMapped : 1;
            ULONG Reserved : 26;
        };
    };
    SIZE_T RegionSize;
    SIZE_T CommitSize;
} WIN32_MEMORY_REGION_INFORMATION, MEMORY_REGION_INFORMATION, *PMEMORY_REGION_INFORMATION;

typedef union _PSAPI_WORKING_SET_BLOCK {
    ULONG_PTR Flags;
    struct {
        ULONG_PTR Protection : 5;
        ULONG_PTR ShareCount : 3;
        ULONG_PTR Shared : 1;
        ULONG_PTR Reserved : 3;
#if (defined(__SIZEOF_POINTER__) && __SIZEOF_POINTER__ == 8) || (defined(UINTPTR_MAX) && UINTPTR_MAX > 0xFFFFFFFFu)
        ULONG_PTR VirtualPage : 52;
#else
        ULONG_PTR VirtualPage : 20;
#endif
    };
} PSAPI_WORKING_SET_BLOCK, *PPSAPI_WORKING_SET_BLOCK;

typedef struct _PSAPI_WORKING_SET_INFORMATION {
    ULONG_PTR NumberOfEntries;
    PSAPI_WORKING_SET_BLOCK WorkingSetInfo[1];
} PSAPI_WORKING_SET_INFORMATION, *PPSAPI_WORKING_SET_INFORMATION;

typedef union _PSAPI_WORKING_SET_EX_BLOCK {
    ULONG_PTR Flags;
    union {
        struct {
            ULONG_PTR Valid : 1;
            ULONG_PTR ShareCount : 3;
            ULONG_PTR Win32Protection : 11;
            ULONG_PTR Shared : 1;
            ULONG_PTR Node : 6;
            ULONG_PTR Locked : 1;
            ULONG_PTR LargePage : 1;
            ULONG_PTR Reserved : 7;
            ULONG_PTR Bad : 1;
        };
        struct {
            ULONG_PTR Valid : 1;
            ULONG_PTR Reserved0 : 14;
            ULONG_PTR Shared : 1;
            ULONG_PTR Reserved1 : 15;
            ULONG_PTR Bad : 1;
        } Invalid;
    };
} PSAPI_WORKING_SET_EX_BLOCK, *PPSAPI_WORKING_SET_EX_BLOCK;

typedef struct _PSAPI_WORKING_SET_EX_INFORMATION {
    PVOID VirtualAddress;
    PSAPI_WORKING_SET_EX_BLOCK VirtualAttributes;
} PSAPI_WORKING_SET_EX_INFORMATION, *PPSAPI_WORKING_SET_EX_INFORMATION;
/* The NT names of the same layouts. */
typedef PSAPI_WORKING_SET_EX_INFORMATION MEMORY_WORKING_SET_EX_INFORMATION;
typedef PSAPI_WORKING_SET_INFORMATION MEMORY_WORKING_SET_INFORMATION;

WINBASEAPI ULONG WINAPI RtlNtStatusToDosError(NTSTATUS Status);
WINBASEAPI NTSTATUS WINAPI NtAllocateVirtualMemory(HANDLE ProcessHandle, PVOID *BaseAddress, ULONG_PTR ZeroBits, PSIZE_T RegionSize, ULONG AllocationType, ULONG Protect);
WINBASEAPI NTSTATUS WINAPI NtAllocateVirtualMemoryEx(HANDLE ProcessHandle, PVOID *BaseAddress, PSIZE_T RegionSize, ULONG AllocationType, ULONG PageProtection, PMEM_EXTENDED_PARAMETER ExtendedParameters, ULONG ExtendedParameterCount);
WINBASEAPI NTSTATUS WINAPI NtFreeVirtualMemory(HANDLE ProcessHandle, PVOID *BaseAddress, PSIZE_T RegionSize, ULONG FreeType);
WINBASEAPI NTSTATUS WINAPI NtProtectVirtualMemory(HANDLE ProcessHandle, PVOID *BaseAddress, PSIZE_T NumberOfBytesToProtect, ULONG NewAccessProtection, PULONG OldAccessProtection);
WINBASEAPI NTSTATUS WINAPI NtQueryVirtualMemory(HANDLE ProcessHandle, LPCVOID BaseAddress, MEMORY_INFORMATION_CLASS MemoryInformationClass, PVOID MemoryInformation, SIZE_T MemoryInformationLength, PSIZE_T ReturnLength);
WINBASEAPI NTSTATUS WINAPI NtLockVirtualMemory(HANDLE ProcessHandle, PVOID *BaseAddress, PSIZE_T RegionSize, ULONG MapType);
WINBASEAPI NTSTATUS WINAPI NtReadVirtualMemory(HANDLE ProcessHandle, PVOID BaseAddress, PVOID Buffer, SIZE_T NumberOfBytesToRead, PSIZE_T NumberOfBytesRead);
WINBASEAPI NTSTATUS WINAPI NtWriteVirtualMemory(HANDLE ProcessHandle, PVOID BaseAddress, PVOID Buffer, SIZE_T NumberOfBytesToWrite, PSIZE_T NumberOfBytesWritten);
WINBASEAPI NTSTATUS WINAPI NtUnlockVirtualMemory(HANDLE ProcessHandle, PVOID *BaseAddress, PSIZE_T RegionSize, ULONG MapType);
WINBASEAPI NTSTATUS WINAPI NtCreateSection(PHANDLE SectionHandle, ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes, PLARGE_INTEGER MaximumSize, ULONG SectionPageProtection, ULONG AllocationAttributes, HANDLE FileHandle);
WINBASEAPI NTSTATUS WINAPI NtMapViewOfSection(HANDLE SectionHandle, HANDLE ProcessHandle, PVOID *BaseAddress, ULONG_PTR ZeroBits, SIZE_T CommitSize, PLARGE_INTEGER SectionOffset, PSIZE_T ViewSize, SECTION_INHERIT InheritDisposition, ULONG AllocationType, ULONG Win32Protect);
WINBASEAPI NTSTATUS WINAPI NtMapViewOfSectionEx(HANDLE SectionHandle, HANDLE ProcessHandle, PVOID *BaseAddress, PLARGE_INTEGER SectionOffset, PSIZE_T ViewSize, ULONG AllocationType, ULONG PageProtection, PMEM_EXTENDED_PARAMETER ExtendedParameters, ULONG ExtendedParameterCount);
WINBASEAPI NTSTATUS WINAPI NtUnmapViewOfSection(HANDLE ProcessHandle, LPCVOID BaseAddress);
WINBASEAPI NTSTATUS WINAPI NtUnmapViewOfSectionEx(HANDLE ProcessHandle, LPCVOID BaseAddress, ULONG Flags);
WINBASEAPI NTSTATUS WINAPI NtAreMappedFilesTheSame(LPCVOID File1MappedAsAnImage, LPCVOID File2MappedAsFile);
WINBASEAPI VOID WINAPI FlushProcessWriteBuffers(VOID);
/* psapi.h (and kernel32's K32 names): current process only. */
WINBASEAPI BOOL WINAPI QueryWorkingSet(HANDLE hProcess, PVOID pv, DWORD cb);
WINBASEAPI BOOL WINAPI QueryWorkingSetEx(HANDLE hProcess, PVOID pv, DWORD cb);
WINBASEAPI BOOL WINAPI K32QueryWorkingSet(HANDLE hProcess, PVOID pv, DWORD cb);
WINBASEAPI BOOL WINAPI K32QueryWorkingSetEx(HANDLE hProcess, PVOID pv, DWORD cb);
/* ---- end the native layer ---- */

/* ---- process memory status, working set, resource notifications, DEP (issue 15 item 2) ---- */
#define ERROR_INSUFFICIENT_BUFFER       122
/* psapi.h: the working set is VmRSS/VmHWM; the paged pool is 0, the non-paged pool the page
   tables (VmPTE); PagefileUsage = PrivateUsage = virtmem's private commit. cb selects the
   structure (>= sizeof(PROCESS_MEMORY_COUNTERS_EX): the _EX one). */
typedef struct _PROCESS_MEMORY_COUNTERS {
    DWORD cb;
    DWORD PageFaultCount;
    SIZE_T PeakWorkingSetSize;
    SIZE_T WorkingSetSize;
    SIZE_T QuotaPeakPagedPoolUsage;
    SIZE_T QuotaPagedPoolUsage;
    SIZE_T QuotaPeakNonPagedPoolUsage;
    SIZE_T QuotaNonPagedPoolUsage;
    SIZE_T PagefileUsage;
    SIZE_T PeakPagefileUsage;
} PROCESS_MEMORY_COUNTERS, *PPROCESS_MEMORY_COUNTERS;
typedef struct _PROCESS_MEMORY_COUNTERS_EX {
    DWORD cb;
    DWORD PageFaultCount;
    SIZE_T PeakWorkingSetSize;
    SIZE_T WorkingSetSize;
    SIZE_T QuotaPeakPagedPoolUsage;
    SIZE_T QuotaPagedPoolUsage;
    SIZE_T QuotaPeakNonPagedPoolUsage;
    SIZE_T QuotaNonPagedPoolUsage;
    SIZE_T PagefileUsage;
    SIZE_T PeakPagefileUsage;
    SIZE_T PrivateUsage;
} PROCESS_MEMORY_COUNTERS_EX, *PPROCESS_MEMORY_COUNTERS_EX;
WINBASEAPI BOOL WINAPI GetProcessMemoryInfo(HANDLE Process, PPROCESS_MEMORY_COUNTERS ppsmemCounters, DWORD cb);
WINBASEAPI BOOL WINAPI K32GetProcessMemoryInfo(HANDLE Process, PPROCESS_MEMORY_COUNTERS ppsmemCounters, DWORD cb);
/* memoryapi.h: the minimum working set is the VirtualLock quota (RLIMIT_MEMLOCK); the maximum
   and the flags are kept and reported, not enforced. (SIZE_T)-1, (SIZE_T)-1 trims. */
#define QUOTA_LIMITS_HARDWS_MIN_ENABLE  0x00000001
#define QUOTA_LIMITS_HARDWS_MIN_DISABLE 0x00000002
#define QUOTA_LIMITS_HARDWS_MAX_ENABLE  0x00000004
#define QUOTA_LIMITS_HARDWS_MAX_DISABLE 0x00000008
typedef SIZE_T *PSIZE_T;
WINBASEAPI BOOL WINAPI GetProcessWorkingSetSize(HANDLE hProcess, PSIZE_T lpMinimumWorkingSetSize, PSIZE_T lpMaximumWorkingSetSize);
WINBASEAPI BOOL WINAPI GetProcessWorkingSetSizeEx(HANDLE hProcess, PSIZE_T lpMinimumWorkingSetSize, PSIZE_T lpMaximumWorkingSetSize, PDWORD Flags);
WINBASEAPI BOOL WINAPI SetProcessWorkingSetSize(HANDLE hProcess, SIZE_T dwMinimumWorkingSetSize, SIZE_T dwMaximumWorkingSetSize);
WINBASEAPI BOOL WINAPI SetProcessWorkingSetSizeEx(HANDLE hProcess, SIZE_T dwMinimumWorkingSetSize, SIZE_T dwMaximumWorkingSetSize, DWORD Flags);
WINBASEAPI BOOL WINAPI EmptyWorkingSet(HANDLE hProcess);
WINBASEAPI BOOL WINAPI K32EmptyWorkingSet(HANDLE hProcess);
/* Memory resource notifications: handles of the one handle table (CloseHandle). Low below
   ~32 MiB of MemAvailable per 4 GiB of memory (at most 64 MiB), high above three times that.
   There is no WaitForSingleObject: poll with QueryMemoryResourceNotification. */
typedef int32_t MEMORY_RESOURCE_NOTIFICATION_TYPE; /* an enum in the SDK; int32_t as in windows-sys */
enum {
    LowMemoryResourceNotification = 0,
    HighMemoryResourceNotification = 1
};
typedef BOOL *PBOOL;
WINBASEAPI HANDLE WINAPI CreateMemoryResourceNotification(MEMORY_RESOURCE_NOTIFICATION_TYPE NotificationType);
WINBASEAPI BOOL WINAPI QueryMemoryResourceNotification(HANDLE ResourceNotificationHandle, PBOOL ResourceState);
/* winbase.h: DEP as the process really gets it (the nx CPU flag, the READ_IMPLIES_EXEC
   personality). SetProcessDEPPolicy fails with ERROR_NOT_SUPPORTED, as in 64-bit Windows. */
typedef int32_t DEP_SYSTEM_POLICY_TYPE; /* an enum in the SDK; int32_t as in windows-sys */
enum {
    DEPPolicyAlwaysOff = 0,
    DEPPolicyAlwaysOn = 1,
    DEPPolicyOptIn = 2,
    DEPPolicyOptOut = 3,
    DEPTotalPolicyCount = 4
};
#define PROCESS_DEP_NONE                        0x00000000
#define PROCESS_DEP_ENABLE                      0x00000001
#define PROCESS_DEP_DISABLE_ATL_THUNK_EMULATION 0x00000002
WINBASEAPI DEP_SYSTEM_POLICY_TYPE WINAPI GetSystemDEPPolicy(VOID);
WINBASEAPI BOOL WINAPI GetProcessDEPPolicy(HANDLE hProcess, LPDWORD lpFlags, PBOOL lpPermanent);
WINBASEAPI BOOL WINAPI SetProcessDEPPolicy(DWORD dwFlags);
/* ---- end process memory status ---- */
/* ---- processes (processthreadsapi.h, memoryapi.h) ---- */
/* A process is named by its Linux pid. Another process's memory can be read, written and
   queried; VirtualAllocEx / VirtualFreeEx / VirtualProtectEx / VirtualUnlockEx / views / AWE on
   another process fail with ERROR_NOT_SUPPORTED (after the access right check). */
typedef DWORD PROCESS_ACCESS_RIGHTS;
#define PROCESS_TERMINATE                 0x0001
#define PROCESS_CREATE_THREAD             0x0002
#define PROCESS_SET_SESSIONID             0x0004
#define PROCESS_VM_OPERATION              0x0008
#define PROCESS_VM_READ                   0x0010
#define PROCESS_VM_WRITE                  0x0020
#define PROCESS_DUP_HANDLE                0x0040
#define PROCESS_CREATE_PROCESS            0x0080
#define PROCESS_SET_QUOTA                 0x0100
#define PROCESS_SET_INFORMATION           0x0200
#define PROCESS_QUERY_INFORMATION         0x0400
#define PROCESS_SUSPEND_RESUME            0x0800
#define PROCESS_QUERY_LIMITED_INFORMATION 0x1000
#define PROCESS_SET_LIMITED_INFORMATION   0x2000
#define PROCESS_ALL_ACCESS                0x001FFFFF
#define PROCESS_DELETE                    0x00010000
#define PROCESS_READ_CONTROL              0x00020000
#define PROCESS_WRITE_DAC                 0x00040000
#define PROCESS_WRITE_OWNER               0x00080000
#define PROCESS_SYNCHRONIZE               0x00100000
#define PROCESS_STANDARD_RIGHTS_REQUIRED  0x000F0000
#define MAXIMUM_ALLOWED                   0x02000000
WINBASEAPI HANDLE WINAPI OpenProcess(PROCESS_ACCESS_RIGHTS dwDesiredAccess, BOOL bInheritHandle, DWORD dwProcessId);
WINBASEAPI DWORD WINAPI GetCurrentProcessId(VOID);
WINBASEAPI DWORD WINAPI GetProcessId(HANDLE Process);
WINBASEAPI BOOL WINAPI ReadProcessMemory(HANDLE hProcess, LPCVOID lpBaseAddress, LPVOID lpBuffer, SIZE_T nSize, SIZE_T *lpNumberOfBytesRead);
WINBASEAPI BOOL WINAPI WriteProcessMemory(HANDLE hProcess, LPVOID lpBaseAddress, LPCVOID lpBuffer, SIZE_T nSize, SIZE_T *lpNumberOfBytesWritten);
/* ---- end processes ---- */
/* ------------------------------------------------------------------------------------------
 * Heaps (issue 16; docs/heap-spec.md): HeapCreate ... GetProcessHeaps.
 * HEAP_GENERATE_EXCEPTIONS: on Linux an allocation failure calls the hook set from Rust with
 * virtmem::win32::set_heap_exception_hook, else aborts naming STATUS_NO_MEMORY.
 * ------------------------------------------------------------------------------------------ */
typedef DWORD HEAP_FLAGS;
typedef int HEAP_INFORMATION_CLASS;
#define HEAP_NONE                       0x0
#define HEAP_NO_SERIALIZE               0x1
#define HEAP_GROWABLE                   0x2
#define HEAP_GENERATE_EXCEPTIONS        0x4
#define HEAP_ZERO_MEMORY                0x8
#define HEAP_REALLOC_IN_PLACE_ONLY      0x10
#define HEAP_TAIL_CHECKING_ENABLED      0x20
#define HEAP_FREE_CHECKING_ENABLED      0x40
#define HEAP_DISABLE_COALESCE_ON_FREE   0x80
#define HEAP_CREATE_SEGMENT_HEAP        0x100
#define HEAP_CREATE_HARDENED            0x200
#define HEAP_CREATE_ALIGN_16            0x10000
#define HEAP_CREATE_ENABLE_TRACING      0x20000
#define HEAP_CREATE_ENABLE_EXECUTE      0x40000
#define HEAP_MAXIMUM_TAG                0xFFF
#define HEAP_PSEUDO_TAG_FLAG            0x8000
#define HEAP_TAG_SHIFT                  18
#define MEMORY_ALLOCATION_ALIGNMENT     16
#define HeapCompatibilityInformation        0
#define HeapEnableTerminationOnCorruption   1
#define HeapOptimizeResources               3
#define HeapTag                             7
#define HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION 1
#define PROCESS_HEAP_REGION             0x1
#define PROCESS_HEAP_UNCOMMITTED_RANGE  0x2
#define PROCESS_HEAP_ENTRY_BUSY         0x4
#define PROCESS_HEAP_SEG_ALLOC          0x8
#define PROCESS_HEAP_ENTRY_MOVEABLE     0x10
#define PROCESS_HEAP_ENTRY_DDESHARE     0x20
#define ERROR_NO_MORE_ITEMS             259
#define STATUS_HEAP_CORRUPTION          ((NTSTATUS)0xC0000374)

/* One HeapWalk item: 40 bytes on 64-bit targets, 28 on 32-bit ones. */
typedef struct _PROCESS_HEAP_ENTRY {
    PVOID lpData;
    DWORD cbData;
    BYTE cbOverhead;
    BYTE iRegionIndex;
    WORD wFlags;
    union {
        struct {
            HANDLE hMem;
            DWORD dwReserved[3];
        } Block;
        struct {
            DWORD dwCommittedSize;
            DWORD dwUnCommittedSize;
            LPVOID lpFirstBlock;
            LPVOID lpLastBlock;
        } Region;
    };
} PROCESS_HEAP_ENTRY, *LPPROCESS_HEAP_ENTRY, *PPROCESS_HEAP_ENTRY;

typedef struct _HEAP_SUMMARY {
    DWORD cb;
    SIZE_T cbAllocated;
    SIZE_T cbCommitted;
    SIZE_T cbReserved;
    SIZE_T cbMaxReserve;
} HEAP_SUMMARY, *PHEAP_SUMMARY, *LPHEAP_SUMMARY;

typedef struct _HEAP_OPTIMIZE_RESOURCES_INFORMATION {
    DWORD Version;
    DWORD Flags;
} HEAP_OPTIMIZE_RESOURCES_INFORMATION, *PHEAP_OPTIMIZE_RESOURCES_INFORMATION;

WINBASEAPI HANDLE WINAPI HeapCreate(DWORD flOptions, SIZE_T dwInitialSize, SIZE_T dwMaximumSize);
WINBASEAPI BOOL WINAPI HeapDestroy(HANDLE hHeap);
WINBASEAPI HANDLE WINAPI GetProcessHeap(VOID);
WINBASEAPI DWORD WINAPI GetProcessHeaps(DWORD NumberOfHeaps, PHANDLE ProcessHeaps);
WINBASEAPI LPVOID WINAPI HeapAlloc(HANDLE hHeap, DWORD dwFlags, SIZE_T dwBytes);
WINBASEAPI LPVOID WINAPI HeapReAlloc(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem, SIZE_T dwBytes);
WINBASEAPI BOOL WINAPI HeapFree(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem);
WINBASEAPI SIZE_T WINAPI HeapSize(HANDLE hHeap, DWORD dwFlags, LPCVOID lpMem);
WINBASEAPI BOOL WINAPI HeapValidate(HANDLE hHeap, DWORD dwFlags, LPCVOID lpMem);
WINBASEAPI SIZE_T WINAPI HeapCompact(HANDLE hHeap, DWORD dwFlags);
WINBASEAPI BOOL WINAPI HeapLock(HANDLE hHeap);
WINBASEAPI BOOL WINAPI HeapUnlock(HANDLE hHeap);
WINBASEAPI BOOL WINAPI HeapWalk(HANDLE hHeap, LPPROCESS_HEAP_ENTRY lpEntry);
WINBASEAPI BOOL WINAPI HeapSummary(HANDLE hHeap, DWORD dwFlags, LPHEAP_SUMMARY lpSummary);
WINBASEAPI BOOL WINAPI HeapQueryInformation(HANDLE HeapHandle, HEAP_INFORMATION_CLASS HeapInformationClass, PVOID HeapInformation, SIZE_T HeapInformationLength, PSIZE_T ReturnLength);
WINBASEAPI BOOL WINAPI HeapSetInformation(HANDLE HeapHandle, HEAP_INFORMATION_CLASS HeapInformationClass, PVOID HeapInformation, SIZE_T HeapInformationLength);
/* ---------------------------------- end of heaps ---------------------------------------- */

/* ------------------------- Global and Local memory (issue 16 item 2) ------------------------ */
/* A fixed block is a process-heap pointer; a moveable block is a handle: the address of a    */
/* pointer-sized slot holding the data pointer (h % 16 == 8 on x64), the entry's flags word    */
/* (lock count in bits 16-23) just below it. 0x10000 handles per process, Global and Local.   */

typedef HANDLE HGLOBAL;
typedef HANDLE HLOCAL;

#define GMEM_FIXED                      0x0000
#define GMEM_MOVEABLE                   0x0002
#define GMEM_NOCOMPACT                  0x0010
#define GMEM_NODISCARD                  0x0020
#define GMEM_ZEROINIT                   0x0040
#define GMEM_MODIFY                     0x0080
#define GMEM_DISCARDABLE                0x0100
#define GMEM_NOT_BANKED                 0x1000
#define GMEM_LOWER                      0x1000
#define GMEM_DDESHARE                   0x2000
#define GMEM_SHARE                      0x2000
#define GMEM_NOTIFY                     0x4000
#define GMEM_VALID_FLAGS                0x7F72
#define GMEM_INVALID_HANDLE             0x8000
#define GMEM_DISCARDED                  0x4000
#define GMEM_LOCKCOUNT                  0x00FF
#define GHND                            0x0042
#define GPTR                            0x0040
#define LMEM_FIXED                      0x0000
#define LMEM_MOVEABLE                   0x0002
#define LMEM_NOCOMPACT                  0x0010
#define LMEM_NODISCARD                  0x0020
#define LMEM_ZEROINIT                   0x0040
#define LMEM_MODIFY                     0x0080
#define LMEM_DISCARDABLE                0x0F00
#define LMEM_VALID_FLAGS                0x0F72
#define LMEM_INVALID_HANDLE             0x8000
#define LMEM_DISCARDED                  0x4000
#define LMEM_LOCKCOUNT                  0x00FF
#define LHND                            0x0042
#define LPTR                            0x0040
#define NONZEROLHND                     0x0002
#define NONZEROLPTR                     0x0000
#define ERROR_DISCARDED                 157

WINBASEAPI HGLOBAL WINAPI GlobalAlloc(UINT uFlags, SIZE_T dwBytes);
WINBASEAPI HGLOBAL WINAPI GlobalReAlloc(HGLOBAL hMem, SIZE_T dwBytes, UINT uFlags);
WINBASEAPI HGLOBAL WINAPI GlobalFree(HGLOBAL hMem);
WINBASEAPI LPVOID WINAPI GlobalLock(HGLOBAL hMem);
WINBASEAPI BOOL WINAPI GlobalUnlock(HGLOBAL hMem);
WINBASEAPI SIZE_T WINAPI GlobalSize(HGLOBAL hMem);
WINBASEAPI UINT WINAPI GlobalFlags(HGLOBAL hMem);
WINBASEAPI HGLOBAL WINAPI GlobalHandle(LPCVOID pMem);
WINBASEAPI HLOCAL WINAPI LocalAlloc(UINT uFlags, SIZE_T uBytes);
WINBASEAPI HLOCAL WINAPI LocalReAlloc(HLOCAL hMem, SIZE_T uBytes, UINT uFlags);
WINBASEAPI HLOCAL WINAPI LocalFree(HLOCAL hMem);
WINBASEAPI LPVOID WINAPI LocalLock(HLOCAL hMem);
WINBASEAPI BOOL WINAPI LocalUnlock(HLOCAL hMem);
WINBASEAPI SIZE_T WINAPI LocalSize(HLOCAL hMem);
WINBASEAPI UINT WINAPI LocalFlags(HLOCAL hMem);
WINBASEAPI HLOCAL WINAPI LocalHandle(LPCVOID pMem);
#define GlobalDiscard(h)                GlobalReAlloc((h), 0, GMEM_MOVEABLE)
#define LocalDiscard(h)                 LocalReAlloc((h), 0, LMEM_MOVEABLE)
/* ----------------------------- end of Global and Local memory ------------------------------- */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* VIRTMEM_H */
