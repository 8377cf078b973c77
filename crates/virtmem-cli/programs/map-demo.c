/* A few allocations with every kind of page, for `virtmem map --script`. */
char *p = VirtualAlloc((void *)0x40000000, 16*4096, MEM_RESERVE, PAGE_READWRITE);
VirtualAlloc(p, 2*4096, MEM_COMMIT, PAGE_READWRITE);
VirtualAlloc(p + 4*4096, 4096, MEM_COMMIT, PAGE_READONLY);
VirtualAlloc(p + 5*4096, 4096, MEM_COMMIT, PAGE_READWRITE | PAGE_GUARD);
VirtualAlloc(p + 6*4096, 4096, MEM_COMMIT, PAGE_EXECUTE_READ);
VirtualAlloc(p + 7*4096, 4096, MEM_COMMIT, PAGE_NOACCESS);
VirtualAlloc(NULL, 1 << 20, MEM_RESERVE | MEM_COMMIT | MEM_TOP_DOWN, PAGE_EXECUTE_READWRITE);
VirtualAlloc((void *)0x00400000, 0x10000, MEM_RESERVE | MEM_COMMIT, PAGE_READONLY);
