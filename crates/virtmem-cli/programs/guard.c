// Guard pages and write watch: commit two pages, make the second a guard page,
// and catch the one-shot guard-page exception with __try/__except.
#include <windows.h>
#include <stdio.h>

int main(void)
{
    SYSTEM_INFO si;
    char *p;
    int i;

    GetSystemInfo(&si);
    printf("page size %u, allocation granularity %u\n", si.dwPageSize, si.dwAllocationGranularity);

    p = VirtualAlloc(NULL, 2 * si.dwPageSize, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    strcpy(p, "hola");
    printf("%s, at %p\n", p, p);

    DWORD old;
    VirtualProtect(p + si.dwPageSize, si.dwPageSize, PAGE_READWRITE | PAGE_GUARD, &old);
    for (i = 0; i < 2; i++) {
        __try {
            p[si.dwPageSize] = 'x';
            printf("try %d: the write worked\n", i + 1);
        } __except (GetExceptionCode() == EXCEPTION_GUARD_PAGE ? EXCEPTION_EXECUTE_HANDLER : EXCEPTION_CONTINUE_SEARCH) {
            printf("try %d: guard page exception %#x; the guard is gone now\n", i + 1, GetExceptionCode());
        }
    }

    MEMORY_BASIC_INFORMATION mbi;
    VirtualQuery(p + si.dwPageSize, &mbi, sizeof(mbi));
    printf("second page: protect %#x, region size %u\n", mbi.Protect, (unsigned)mbi.RegionSize);

    VirtualFree(p, 0, MEM_RELEASE);
    return 0;
}
