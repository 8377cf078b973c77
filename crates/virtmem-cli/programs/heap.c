/* Heaps and moveable Global memory in a simulated process (issue 16):
 *   virtmem run --sim win32 --map programs/heap.c
 * The map labels the heaps' reservations "heap (process)", "heap 0x…" and the Global/Local
 * handle table, as VMMap names heaps. */
HANDLE ph = GetProcessHeap();
char *a = HeapAlloc(ph, HEAP_ZERO_MEMORY, 100);
printf("process heap block %p, size %d, first byte %d\n", a, (int)HeapSize(ph, 0, a), a[0]);

HANDLE h = HeapCreate(0, 0x10000, 0);
char *b = HeapAlloc(h, 0, 5000);
b[4999] = 7;
b = HeapReAlloc(h, 0, b, 20000);
printf("private heap block grown to %d, last byte kept: %d\n", (int)HeapSize(h, 0, b), b[4999]);
if (!HeapFree(h, 0, a))
    printf("HeapFree of another heap's block refused: error %d\n", (int)GetLastError());

char entry[40];
memset(entry, 0, 40);
int busy = 0;
while (HeapWalk(h, entry))
    if (*(unsigned short *)(entry + sizeof(void *) + 6) & PROCESS_HEAP_ENTRY_BUSY)
        busy++;
printf("HeapWalk: %d busy block(s), then error %d\n", busy, (int)GetLastError());

void *m = GlobalAlloc(GMEM_MOVEABLE, 64);
char *d = GlobalLock(m);
strcpy(d, "moveable");
printf("handle %p -> data %p, flags %d\n", m, d, (int)GlobalFlags(m));
GlobalUnlock(m);
GlobalReAlloc(m, 4096, GMEM_MOVEABLE);
d = GlobalLock(m);
printf("after GlobalReAlloc: size %d, text \"%s\"\n", (int)GlobalSize(m), d);
GlobalUnlock(m);
HANDLE big = HeapAlloc(h, 0, 2 << 20);
printf("a large block of its own: %p\n", big);
