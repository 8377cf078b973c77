/* `virtmem run --native`: the program may change only the memory it allocated. The calls on
   the tool's own memory (found with VirtualQuery), a string literal or a local variable fail
   with ERROR_INVALID_ADDRESS (487); queries work; the program's own memory works. */
void report(const char *what, int r)
{
    if (r)
        printf("%s: ok\n", what);
    else
        printf("%s: failed, error %lu\n", what, GetLastError());
}

int main(void)
{
    const char *lit = "hello";
    int local = 5;
    DWORD old = 7;
    MEMORY_BASIC_INFORMATION mbi;
    // The tool's own memory: the first committed read-write region of the process.
    char *tool = NULL;
    for (char *a = NULL; VirtualQuery(a, &mbi, sizeof(mbi)); a = (char *)mbi.BaseAddress + mbi.RegionSize) {
        if (mbi.State == MEM_COMMIT && mbi.Protect == PAGE_READWRITE) {
            tool = (char *)mbi.BaseAddress;
            break;
        }
    }
    printf("found the tool's memory: %d\n", tool != NULL);
    report("VirtualProtect(tool)", VirtualProtect(tool, 4096, PAGE_NOACCESS, &old));
    printf("old %#x\n", old);
    report("VirtualProtectEx(tool)", VirtualProtectEx(GetCurrentProcess(), tool, 4096, PAGE_NOACCESS, &old));
    report("VirtualProtect(literal)", VirtualProtect((void *)lit, 1, PAGE_NOACCESS, &old));
    report("VirtualProtect(&local)", VirtualProtect(&local, 4, PAGE_READONLY, &old));
    report("VirtualFree(tool, 0, MEM_RELEASE)", VirtualFree(tool, 0, MEM_RELEASE));
    report("VirtualFree(tool, 4096, MEM_DECOMMIT)", VirtualFree(tool, 4096, MEM_DECOMMIT));
    report("VirtualFree(literal, 0, MEM_RELEASE)", VirtualFree((void *)lit, 0, MEM_RELEASE));
    report("VirtualLock(tool)", VirtualLock(tool, 4096));
    report("VirtualUnlock(tool)", VirtualUnlock(tool, 4096));
    report("VirtualAlloc(tool, MEM_COMMIT)", VirtualAlloc(tool, 4096, MEM_COMMIT, PAGE_READONLY) != NULL);
    report("VirtualAlloc(&local, MEM_COMMIT)", VirtualAlloc(&local, 4096, MEM_COMMIT, PAGE_READWRITE) != NULL);
    report("VirtualAlloc(tool, MEM_RESET)", VirtualAlloc(tool, 4096, MEM_RESET, PAGE_NOACCESS) != NULL);
    printf("DiscardVirtualMemory(tool): %lu\n", DiscardVirtualMemory(tool, 4096));
    PVOID addrs[4];
    ULONG_PTR cnt = 4;
    DWORD gran;
    printf("GetWriteWatch(reset, tool): %d, error %lu\n",
           (int)GetWriteWatch(WRITE_WATCH_FLAG_RESET, tool, 4096, addrs, &cnt, &gran), GetLastError());
    // A new reservation there is no change to it: the address is simply occupied.
    report("VirtualAlloc(tool, MEM_RESERVE)", VirtualAlloc(tool, 0x10000, MEM_RESERVE, PAGE_READWRITE) != NULL);
    printf("ResetWriteWatch(tool): %d, error %lu\n", (int)ResetWriteWatch(tool, 4096), GetLastError());
    // Queries of any address stay allowed, and the memory is unchanged.
    SIZE_T n = VirtualQuery(tool, &mbi, sizeof(mbi));
    printf("VirtualQuery(tool): %d, committed %d, protect %#x\n", (int)n, mbi.State == MEM_COMMIT, mbi.Protect);

    // The program's own memory works as usual.
    char *p = (char *)VirtualAlloc(NULL, 0x10000, MEM_RESERVE, PAGE_READWRITE);
    report("commit", VirtualAlloc(p, 0x2000, MEM_COMMIT, PAGE_READWRITE) == p);
    p[0] = 42;
    report("protect", VirtualProtect(p, 0x1000, PAGE_READONLY, &old));
    printf("old %#x, p[0] %d\n", old, p[0]);
    report("lock", VirtualLock(p + 0x1000, 0x1000));
    report("unlock", VirtualUnlock(p + 0x1000, 0x1000));
    report("protect past the end", VirtualProtect(p + 0x1000, 0x10000, PAGE_READONLY, &old));
    report("decommit", VirtualFree(p + 0x1000, 0x1000, MEM_DECOMMIT));
    report("release", VirtualFree(p, 0, MEM_RELEASE));
    report("protect after release", VirtualProtect(p, 0x1000, PAGE_READONLY, &old));
    // Placeholders split from the program's own are the program's too.
    char *ph = (char *)VirtualAlloc2(NULL, NULL, 0x20000, MEM_RESERVE | MEM_RESERVE_PLACEHOLDER, PAGE_NOACCESS, NULL, 0);
    report("split", VirtualFree(ph, 0x10000, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER));
    char *v = (char *)VirtualAlloc2(NULL, ph + 0x10000, 0x10000, MEM_RESERVE | MEM_REPLACE_PLACEHOLDER, PAGE_READWRITE, NULL, 0);
    report("replace the second half", v == ph + 0x10000);
    report("commit it", VirtualAlloc(v, 0x1000, MEM_COMMIT, PAGE_READWRITE) == v);
    v[5] = 9;
    printf("v[5] = %d\n", v[5]);
    report("release it", VirtualFree(v, 0, MEM_RELEASE));
    report("release the first half", VirtualFree(ph, 0, MEM_RELEASE));
    // AWE: frames the program did not allocate are refused; its own work.
    char *w = (char *)VirtualAlloc(NULL, 2 * 4096, MEM_RESERVE | MEM_PHYSICAL, PAGE_READWRITE);
    ULONG_PTR count = 2, pfns[2];
    report("AllocateUserPhysicalPages", AllocateUserPhysicalPages(GetCurrentProcess(), &count, pfns));
    ULONG_PTR other[1] = {pfns[1] + 1000};
    ULONG_PTR one = 1;
    report("FreeUserPhysicalPages(other)", FreeUserPhysicalPages(GetCurrentProcess(), &one, other));
    report("MapUserPhysicalPages(w, other)", MapUserPhysicalPages(w, 1, other));
    report("MapUserPhysicalPages(tool, own)", MapUserPhysicalPages(tool, 1, pfns));
    report("MapUserPhysicalPages(w, own)", MapUserPhysicalPages(w, 2, pfns));
    report("FreeUserPhysicalPages(own)", FreeUserPhysicalPages(GetCurrentProcess(), &count, pfns));
    report("VirtualFree(w)", VirtualFree(w, 0, MEM_RELEASE));
    printf("the tool is still alive\n");
    return 0;
}
