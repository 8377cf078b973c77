/*
 * heap_demo.c: Windows heaps and moveable Global memory with virtmem on Linux.
 *
 *   1. a private growable heap: HeapCreate, HeapAlloc (HEAP_ZERO_MEMORY), HeapSize,
 *      HeapReAlloc, then HeapWalk counts the busy blocks and the region;
 *   2. the clipboard-style moveable block: GlobalAlloc(GMEM_MOVEABLE) gives a handle,
 *      GlobalLock gives the pointer (lock count in the entry's flags word), GlobalUnlock,
 *      GlobalReAlloc may move the data while the handle stays, GlobalDiscard, GlobalFree;
 *   3. HeapDestroy frees everything at once.
 *
 * Prints one line per check and closes with "N passed, M failed"; exits 0 when all pass.
 *
 *     cc -std=gnu11 -Wall -Iinclude examples/c/heap_demo.c target/release/libvirtmem.a \
 *        -lpthread -ldl -lm -o heap_demo && ./heap_demo
 */
#include <windows.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;

#define EXPECT(cond)                                                                     \
    do {                                                                                 \
        if (cond) {                                                                      \
            passed++;                                                                    \
        } else {                                                                         \
            failed++;                                                                    \
            printf("FAILED line %d: %s (last error %lu)\n", __LINE__, #cond,             \
                   (unsigned long)GetLastError());                                       \
        }                                                                                \
    } while (0)

static void private_heap(void)
{
    HANDLE heap = HeapCreate(0, 0, 0);
    EXPECT(heap != NULL);
    char *blocks[10];
    for (int i = 0; i < 10; i++) {
        blocks[i] = HeapAlloc(heap, HEAP_ZERO_MEMORY, 100 + i);
        EXPECT(blocks[i] != NULL && (ULONG_PTR)blocks[i] % 16 == 0);
        EXPECT(blocks[i][99 + i] == 0);
        EXPECT(HeapSize(heap, 0, blocks[i]) == (SIZE_T)(100 + i));
        memset(blocks[i], 'a' + i, 100 + i);
    }
    char *grown = HeapReAlloc(heap, 0, blocks[3], 5000);
    EXPECT(grown != NULL && grown[102] == 'd');
    blocks[3] = grown;
    EXPECT(HeapReAlloc(heap, HEAP_REALLOC_IN_PLACE_ONLY, blocks[4], 1 << 20) == NULL);
    EXPECT(HeapFree(heap, 0, blocks[0]));
    EXPECT(!HeapFree(heap, 0, blocks[0])); /* refused, not corrupting */

    PROCESS_HEAP_ENTRY e;
    memset(&e, 0, sizeof e);
    int busy = 0, regions = 0;
    while (HeapWalk(heap, &e)) {
        if (e.wFlags & PROCESS_HEAP_ENTRY_BUSY)
            busy++;
        if (e.wFlags & PROCESS_HEAP_REGION)
            regions++;
    }
    EXPECT(GetLastError() == ERROR_NO_MORE_ITEMS);
    EXPECT(busy == 9);
    EXPECT(regions >= 1);
    printf("private heap: %d busy blocks in %d region(s)\n", busy, regions);
    EXPECT(HeapValidate(heap, 0, NULL));
    EXPECT(HeapDestroy(heap));
}

static void moveable_global(void)
{
    HGLOBAL h = GlobalAlloc(GMEM_MOVEABLE, 64);
    EXPECT(h != NULL && (ULONG_PTR)h % 16 == 8);
    char *p = GlobalLock(h);
    EXPECT(p != NULL && p != (char *)h);
    EXPECT(*(void **)h == p); /* the handle is the slot holding the data pointer */
    EXPECT(GlobalLock(h) == p);
    EXPECT(GlobalFlags(h) == 2);
    EXPECT(((*((ULONG_PTR *)h - 1)) >> 16 & 0xFF) == 2); /* lock count in the flags word */
    strcpy(p, "clipboard text");
    EXPECT(GlobalUnlock(h));
    EXPECT(!GlobalUnlock(h) && GetLastError() == 0);
    EXPECT(GlobalHandle(p) == h);

    HGLOBAL same = GlobalReAlloc(h, 4096, GMEM_MOVEABLE);
    EXPECT(same == h);
    EXPECT(GlobalSize(h) == 4096);
    p = GlobalLock(h);
    EXPECT(p != NULL && strcmp(p, "clipboard text") == 0);
    EXPECT(!GlobalUnlock(h));
    EXPECT(GlobalDiscard(h) == h);
    EXPECT(GlobalSize(h) == 0 && (GlobalFlags(h) & GMEM_DISCARDED));
    SetLastError(0);
    EXPECT(GlobalLock(h) == NULL && GetLastError() == ERROR_DISCARDED);
    EXPECT(GlobalFree(h) == NULL);
    EXPECT(GlobalFree(h) == h && GetLastError() == ERROR_INVALID_HANDLE);
    printf("moveable block: locked, moved, discarded and freed through its handle\n");

    HLOCAL f = LocalAlloc(LPTR, 32);
    EXPECT(f != NULL && LocalLock(f) == f && LocalSize(f) == 32);
    EXPECT(LocalFree(f) == NULL);
}

int main(void)
{
    private_heap();
    moveable_global();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
