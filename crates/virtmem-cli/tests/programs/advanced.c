/* Write watch, EXCEPTION_CONTINUE_EXECUTION, VirtualAlloc2 with address requirements, AWE. */
int main(void) {
    char *p = VirtualAlloc(NULL, 4 * 4096, MEM_RESERVE | MEM_COMMIT | MEM_WRITE_WATCH, PAGE_READWRITE);
    p[4096] = 1; p[3 * 4096 + 5] = 2;
    PVOID addrs[8]; ULONG_PTR count = 8; DWORD gran;
    UINT r = GetWriteWatch(WRITE_WATCH_FLAG_RESET, p, 4 * 4096, addrs, &count, &gran);
    printf("r=%u count=%u gran=%u\n", r, (unsigned)count, gran);
    for (ULONG_PTR i = 0; i < count; i++) printf("  written: page %d\n", (int)(((char *)addrs[i] - p) / 4096));
    count = 8; GetWriteWatch(0, p, 4 * 4096, addrs, &count, &gran); printf("after reset: %u\n", (unsigned)count);
    // Continue execution: commit the page in the filter, then the access is retried.
    char *q = VirtualAlloc(NULL, 4096, MEM_RESERVE, PAGE_READWRITE);
    __try { q[10] = 7; printf("q[10] = %d\n", q[10]); }
    __except (VirtualAlloc(q, 4096, MEM_COMMIT, PAGE_READWRITE) ? EXCEPTION_CONTINUE_EXECUTION : EXCEPTION_EXECUTE_HANDLER) { printf("no\n"); }
    MEM_ADDRESS_REQUIREMENTS req = {0};
    req.LowestStartingAddress = (PVOID)0x20000000; req.HighestEndingAddress = (PVOID)0x2fffffff; req.Alignment = 0x100000;
    MEM_EXTENDED_PARAMETER param = {0};
    param.Type = MemExtendedParameterAddressRequirements; param.Pointer = &req;
    void *v = VirtualAlloc2(NULL, NULL, 0x10000, MEM_RESERVE, PAGE_READWRITE, &param, 1);
    printf("VirtualAlloc2 -> %p (err %lu)\n", v, GetLastError());
    void *w = VirtualAlloc(NULL, 2 * 4096, MEM_RESERVE | MEM_PHYSICAL, PAGE_READWRITE);
    ULONG_PTR n = 2, pfns[2];
    BOOL ok = AllocateUserPhysicalPages(GetCurrentProcess(), &n, pfns);
    printf("AWE window %p, alloc %d n=%u err=%lu\n", w, ok, (unsigned)n, GetLastError());
    ok = MapUserPhysicalPages(w, 2, pfns);
    printf("map %d err %lu\n", ok, GetLastError());
    if (ok) { ((int *)w)[0] = 42; MapUserPhysicalPages(w, 2, NULL); MapUserPhysicalPages((char *)w + 4096, 1, pfns); printf("moved: %d\n", *(int *)((char *)w + 4096)); }
    return 0;
}
