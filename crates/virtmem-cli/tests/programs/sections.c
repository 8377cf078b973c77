/* Sections: a pagefile-backed section, two views, a write in one read back in the other. */
#include <windows.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    HANDLE h, dup;
    char *a, *b, *c;
    MEMORY_BASIC_INFORMATION mbi;

    h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 0x3000, NULL);
    printf("CreateFileMapping: %s, last error %lu\n", h ? "ok" : "failed", GetLastError());
    a = (char *)MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0);
    b = (char *)MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0);
    printf("two views: %s\n", a && b && a != b ? "ok" : "failed");
    strcpy(a + 0x1000, "escrito en la vista A");
    printf("read through view B: %s\n", b + 0x1000);
    VirtualQuery(b, &mbi, sizeof(mbi));
    printf("view B: type %#lx, state %#lx, protect %#lx, size %#lx, base is view: %d\n",
           mbi.Type, mbi.State, mbi.Protect, (unsigned long)mbi.RegionSize, mbi.AllocationBase == b);
    __try {
        b[0] = 1;
        printf("never\n");
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        printf("writing to the read-only view: exception %#lx\n", GetExceptionCode());
    }
    printf("VirtualFree(view): %d, error %lu\n", VirtualFree(a, 0, MEM_RELEASE), GetLastError());

    /* Copy-on-write: the copy stays in its view. */
    c = (char *)MapViewOfFile(h, FILE_MAP_COPY, 0, 0, 0);
    c[0x1000] = 'E';
    VirtualQuery(c + 0x1000, &mbi, sizeof(mbi));
    printf("copy-on-write: c \"%.5s\", a \"%.5s\", protect %#lx\n", c + 0x1000, a + 0x1000, mbi.Protect);

    /* Names: the same name is the same section. */
    HANDLE n1 = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 0x1000, L"Local\\seccion");
    HANDLE n2 = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 0x1000, "Local\\seccion");
    printf("same name again: last error %lu\n", GetLastError());
    HANDLE n3 = OpenFileMappingA(FILE_MAP_READ, FALSE, "Local\\nadie");
    printf("OpenFileMapping(unknown): %p, error %lu\n", n3, GetLastError());
    if (!DuplicateHandle(GetCurrentProcess(), n2, GetCurrentProcess(), &dup, 0, FALSE, DUPLICATE_SAME_ACCESS))
        printf("DuplicateHandle failed\n");
    char *v = (char *)MapViewOfFile(dup, FILE_MAP_ALL_ACCESS, 0, 0, 0);
    char *w = (char *)MapViewOfFile(n1, FILE_MAP_READ, 0, 0, 0);
    v[7] = 'x';
    printf("through the duplicate: %c\n", w[7]);
    printf("CloseHandle x3: %d %d %d\n", CloseHandle(n1), CloseHandle(n2), CloseHandle(dup));
    printf("CloseHandle again: %d, error %lu\n", CloseHandle(dup), GetLastError());

    printf("UnmapViewOfFile(a + 0x1064): %d\n", UnmapViewOfFile(a + 0x1064));
    printf("UnmapViewOfFile(a) again: %d, error %lu\n", UnmapViewOfFile(a), GetLastError());
    CloseHandle(h);
    printf("view B after CloseHandle: %s\n", b + 0x1000);
    printf("FlushViewOfFile(b): %d\n", FlushViewOfFile(b, 0));
    /* File-backed sections need a file: the simulated machine has none. */
    HANDLE f = CreateFileMappingA((HANDLE)0x10, NULL, PAGE_READONLY, 0, 0, NULL);
    printf("file-backed: %p, error %lu\n", f, GetLastError());
    UnmapViewOfFile(c);
    return 0;
}
