/* The native layer from C, as a program written against winternl.h would use it:
 * NtAllocateVirtualMemory / NtProtectVirtualMemory / NtQueryVirtualMemory / NtFreeVirtualMemory
 * with their in/out parameters, a section through NtCreateSection and NtMapViewOfSection, the
 * working-set attributes of a page, RtlNtStatusToDosError and FlushProcessWriteBuffers.
 * Prints one line per failed check and "N passed, M failed". */
#include <stdio.h>
#include <winternl.h>

static int passed, failed;

#define CHECK(cond) do { if (cond) passed++; else { failed++; printf("FAILED line %d: %s\n", __LINE__, #cond); } } while (0)

int main(void)
{
    PVOID base = NULL;
    SIZE_T size = 0x10000;
    NTSTATUS st = NtAllocateVirtualMemory(NtCurrentProcess(), &base, 0, &size, MEM_RESERVE, PAGE_READWRITE);
    CHECK(st == STATUS_SUCCESS && base != NULL && size == 0x10000);

    /* Commit two bytes straddling a page boundary: two pages, written back rounded. */
    PVOID at = (char *)base + 0x1FFF;
    SIZE_T len = 2;
    st = NtAllocateVirtualMemory(NtCurrentProcess(), &at, 0, &len, MEM_COMMIT, PAGE_READWRITE);
    CHECK(st == STATUS_SUCCESS && at == (char *)base + 0x1000 && len == 0x2000);
    ((char *)base)[0x1000] = 42;

    /* Protecting reserved pages: STATUS_NOT_COMMITTED, old protection PAGE_NOACCESS. */
    PVOID p = base;
    SIZE_T plen = 0x1000;
    ULONG old = 0;
    st = NtProtectVirtualMemory(NtCurrentProcess(), &p, &plen, PAGE_READONLY, &old);
    CHECK(st == STATUS_NOT_COMMITTED && old == PAGE_NOACCESS);
    CHECK(RtlNtStatusToDosError(st) == ERROR_INVALID_ADDRESS);

    MEMORY_BASIC_INFORMATION mbi;
    SIZE_T ret = 0;
    st = NtQueryVirtualMemory(NtCurrentProcess(), (char *)base + 0x1000, MemoryBasicInformation, &mbi, sizeof mbi, &ret);
    CHECK(st == STATUS_SUCCESS && ret == sizeof mbi && mbi.State == MEM_COMMIT && mbi.RegionSize == 0x2000);

    MEMORY_REGION_INFORMATION region;
    st = NtQueryVirtualMemory(NtCurrentProcess(), base, MemoryRegionInformation, &region, sizeof region, &ret);
    CHECK(st == STATUS_SUCCESS && region.RegionSize == 0x10000 && region.CommitSize == 0x2000);

    /* The touched page is in the working set; the untouched committed one is not. */
    PSAPI_WORKING_SET_EX_INFORMATION ws[2];
    ws[0].VirtualAddress = (char *)base + 0x1000;
    ws[1].VirtualAddress = (char *)base + 0x2000;
    CHECK(QueryWorkingSetEx(NtCurrentProcess(), ws, sizeof ws));
    CHECK(ws[0].VirtualAttributes.Valid == 1 && ws[0].VirtualAttributes.Win32Protection == PAGE_READWRITE);
    CHECK(ws[1].VirtualAttributes.Valid == 0);

    /* Release not at the base fails and leaves the out parameters alone. */
    PVOID f = (char *)base + 0x1000;
    SIZE_T flen = 0;
    st = NtFreeVirtualMemory(NtCurrentProcess(), &f, &flen, MEM_RELEASE);
    CHECK(st == STATUS_FREE_VM_NOT_AT_BASE && f == (char *)base + 0x1000 && flen == 0);
    f = base;
    st = NtFreeVirtualMemory(NtCurrentProcess(), &f, &flen, MEM_RELEASE);
    CHECK(st == STATUS_SUCCESS && f == base && flen == 0x10000);

    /* A pagefile-backed section and a view of it. */
    HANDLE section = NULL;
    LARGE_INTEGER max;
    max.QuadPart = 0x3000;
    st = NtCreateSection(&section, SECTION_ALL_ACCESS, NULL, &max, PAGE_READWRITE, SEC_COMMIT, NULL);
    CHECK(st == STATUS_SUCCESS && section != NULL);
    PVOID view = NULL;
    SIZE_T vsize = 0;
    st = NtMapViewOfSection(section, NtCurrentProcess(), &view, 0, 0, NULL, &vsize, ViewUnmap, 0, PAGE_READWRITE);
    CHECK(st == STATUS_SUCCESS && view != NULL && vsize == 0x3000);
    CHECK(NtAreMappedFilesTheSame(view, (char *)view + 100) == STATUS_SUCCESS);
    CHECK(NtAreMappedFilesTheSame(view, NULL) == STATUS_INVALID_ADDRESS);
    CHECK(NtUnmapViewOfSection(NtCurrentProcess(), view) == STATUS_SUCCESS);
    CHECK(NtUnmapViewOfSection(NtCurrentProcess(), view) == STATUS_NOT_MAPPED_VIEW);
    CloseHandle(section);

    FlushProcessWriteBuffers();
    CHECK(NtAllocateVirtualMemory(NULL, &base, 0, &size, MEM_RESERVE, PAGE_READWRITE) == STATUS_INVALID_HANDLE);

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
