/* The language: declarations, pointers, arrays, loops, switch, functions, printf, and the
   Win32 memory functions with their structures. */
#include <windows.h>
#include <stdio.h>
#define PAGES 4

int sum(int *a, int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += a[i];
    return s;
}

const char *state(DWORD s)
{
    switch (s) {
    case MEM_COMMIT: return "commit";
    case MEM_RESERVE: return "reserve";
    default: return "free";
    }
}

int main(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    printf("page %u, granularity %#x, user space %p-%p\n", si.dwPageSize,
           si.dwAllocationGranularity, si.lpMinimumApplicationAddress,
           si.lpMaximumApplicationAddress);

    char *p = (char *)VirtualAlloc(NULL, PAGES * si.dwPageSize, MEM_RESERVE, PAGE_NOACCESS);
    printf("reserved %d pages at %p; sizeof(void *) = %d, sizeof(MEMORY_BASIC_INFORMATION) = %d\n",
           PAGES, p, (int)sizeof(void *), (int)sizeof(MEMORY_BASIC_INFORMATION));
    if (!VirtualAlloc(p, si.dwPageSize, MEM_COMMIT, PAGE_READWRITE))
        printf("commit failed: %lu\n", GetLastError());

    int *q = (int *)p;
    for (int i = 0; i < 10; i++)
        q[i] = i * i;
    *(int *)(p + 100) = 5;
    printf("sum %d, q[3] = %d, *(int *)(p + 100) = %d, (q + 1) - q = %d, (char *)(q + 1) - p = %d\n",
           sum(q, 10), q[3], *(int *)(p + 100), (int)((q + 1) - q), (int)((char *)(q + 1) - p));

    MEMORY_BASIC_INFORMATION mbi;
    SIZE_T n = VirtualQuery(p + si.dwPageSize, &mbi, sizeof(mbi));
    printf("VirtualQuery: %u bytes; base %p, %s, protect %#x, size %#x, type %#x\n", (unsigned)n,
           mbi.BaseAddress, state(mbi.State), mbi.Protect, (unsigned)mbi.RegionSize, mbi.Type);

    DWORD old = 0;
    if (VirtualProtect(p, si.dwPageSize, PAGE_READONLY, &old))
        printf("VirtualProtect: old protection %#x\n", old);
    if (!VirtualProtect(p + si.dwPageSize, 1, PAGE_READONLY, &old))
        printf("VirtualProtect on a reserved page: error %lu, old %#x\n", GetLastError(), old);
    if (!VirtualFree(p, si.dwPageSize, MEM_RELEASE))
        printf("VirtualFree(p, size, MEM_RELEASE): error %lu\n", GetLastError());

    unsigned char x = 250;
    x += 10;
    long long big = 1LL << 40;
    printf("x = %d, -1u = %u, -7 / 2 = %d, %%x of -1 = %x, 1LL << 40 = %lld, 7 %% 3 = %d\n",
           x, -1u, -7 / 2, -1, big, 7 % 3);
    char buf[32];
    sprintf(buf, "[%5s|%-4d|%04x|%c]", "ab", 7, 255, 'z');
    puts(buf);
    int k = 0;
    do { k++; } while (k < 5);
    while (1) { if (k > 7) break; k++; }
    printf("k = %d, strlen = %d, ternary = %s\n", k, (int)strlen(buf), k > 5 ? "big" : "small");

    __try {
        *p = 1;
        printf("not printed\n");
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        printf("caught exception %#x writing to a read-only page\n", GetExceptionCode());
    }
    VirtualFree(p, 0, MEM_RELEASE);
    return 0;
}
