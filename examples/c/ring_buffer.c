/*
 * ring_buffer.c: the circular buffer of the VirtualAlloc2 documentation ("Scenario 1"), with
 * virtmem on Linux.
 *
 * One section of `size` bytes is mapped twice, into two adjacent halves of a placeholder, so
 * that buffer[i] and buffer[i + size] are the same byte. A writer or reader that starts near the
 * end of the buffer just keeps going past `size`: a record that "wraps around" is still one
 * contiguous run of memory, and nobody has to split a copy in two.
 *
 * The steps, as on Windows:
 *   1. reserve a 2*size placeholder: VirtualAlloc2(MEM_RESERVE | MEM_RESERVE_PLACEHOLDER);
 *   2. split it in two: VirtualFree(first half, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER);
 *   3. create a pagefile-backed section of `size` bytes: CreateFileMapping;
 *   4. map the section into each half: MapViewOfFile3(MEM_REPLACE_PLACEHOLDER), NULL process;
 *   5. use it; unmap both views, close the section.
 *
 * Prints what it does and exits 0 when every record read back is the one written.
 *
 *     cc -std=gnu11 -Wall -Iinclude examples/c/ring_buffer.c target/release/libvirtmem.a \
 *        -lpthread -ldl -lm -o ring_buffer && ./ring_buffer
 */
#include <windows.h>
#include <stdio.h>
#include <string.h>

static int failures;

#define EXPECT(cond)                                                                     \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            printf("FAILED: %s (ring_buffer.c:%d), last error %lu\n", #cond, __LINE__,   \
                   (unsigned long)GetLastError());                                       \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

/* The circular buffer: `base` maps the section at [0, size) and again at [size, 2*size). */
typedef struct {
    char *base;
    SIZE_T size;
    HANDLE section;
    SIZE_T head; /* where the next record is written (always < size) */
    SIZE_T tail; /* where the next record is read (always < size) */
} RING;

/* The VirtualAlloc2 documentation's CreateRingBuffer, step by step. `size` must be a multiple
   of the allocation granularity. */
static BOOL ring_create(RING *ring, SIZE_T size)
{
    char *placeholder1 = NULL, *placeholder2 = NULL;
    void *view1 = NULL, *view2 = NULL;
    HANDLE section = NULL;

    /* 1. A placeholder twice the buffer's size. */
    placeholder1 = VirtualAlloc2(NULL, NULL, 2 * size, MEM_RESERVE | MEM_RESERVE_PLACEHOLDER,
                                 PAGE_NOACCESS, NULL, 0);
    if (placeholder1 == NULL) {
        printf("VirtualAlloc2 failed, error %lu\n", (unsigned long)GetLastError());
        goto fail;
    }
    printf("reserved a placeholder of %zu KiB at %p\n", (size_t)(2 * size / 1024),
           (void *)placeholder1);

    /* 2. Split it into two placeholders of `size` bytes. */
    if (!VirtualFree(placeholder1, size, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER)) {
        printf("VirtualFree (split) failed, error %lu\n", (unsigned long)GetLastError());
        goto fail;
    }
    placeholder2 = placeholder1 + size;
    printf("split it into %p and %p\n", (void *)placeholder1, (void *)placeholder2);

    /* 3. The pagefile-backed section: the buffer's memory. */
    section = CreateFileMapping(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, (DWORD)size,
                                NULL);
    if (section == NULL) {
        printf("CreateFileMapping failed, error %lu\n", (unsigned long)GetLastError());
        goto fail;
    }

    /* 4. Map it into both placeholders (a NULL process is the current one). */
    view1 = MapViewOfFile3(section, NULL, placeholder1, 0, size, MEM_REPLACE_PLACEHOLDER,
                           PAGE_READWRITE, NULL, 0);
    if (view1 == NULL) {
        printf("MapViewOfFile3 (first half) failed, error %lu\n",
               (unsigned long)GetLastError());
        goto fail;
    }
    placeholder1 = NULL; /* now a view */
    view2 = MapViewOfFile3(section, NULL, placeholder2, 0, size, MEM_REPLACE_PLACEHOLDER,
                           PAGE_READWRITE, NULL, 0);
    if (view2 == NULL) {
        printf("MapViewOfFile3 (second half) failed, error %lu\n",
               (unsigned long)GetLastError());
        goto fail;
    }
    printf("mapped one %zu KiB section at %p and at %p\n", (size_t)(size / 1024), view1, view2);

    ring->base = view1;
    ring->size = size;
    ring->section = section;
    ring->head = ring->tail = 0;
    return TRUE;

fail:
    if (view1)
        UnmapViewOfFile(view1);
    if (view2)
        UnmapViewOfFile(view2);
    if (section)
        CloseHandle(section);
    if (placeholder1)
        VirtualFree(placeholder1, 0, MEM_RELEASE);
    if (placeholder2)
        VirtualFree(placeholder2, 0, MEM_RELEASE);
    return FALSE;
}

static void ring_destroy(RING *ring)
{
    EXPECT(UnmapViewOfFile(ring->base));
    EXPECT(UnmapViewOfFile(ring->base + ring->size));
    EXPECT(CloseHandle(ring->section));
}

/* Writes a record of `len` bytes at the head: one memcpy, wherever the head is. */
static void ring_write(RING *ring, const void *record, SIZE_T len)
{
    memcpy(ring->base + ring->head, record, len);
    ring->head = (ring->head + len) % ring->size;
}

/* The next record of `len` bytes, read in place: a pointer into the buffer, contiguous even
   when the record runs past the end of the first view. */
static const char *ring_peek(RING *ring)
{
    return ring->base + ring->tail;
}

static void ring_consume(RING *ring, SIZE_T len)
{
    ring->tail = (ring->tail + len) % ring->size;
}

int main(void)
{
    SYSTEM_INFO si;
    RING ring;
    SIZE_T size;
    char record[200];
    int i, n, wrapped = 0;

    GetSystemInfo(&si);
    size = si.dwAllocationGranularity; /* 64 KiB */
    if (!ring_create(&ring, size))
        return 1;

    /* The two views are the same memory. */
    ring.base[10] = 'A';
    EXPECT(ring.base[size + 10] == 'A');
    ring.base[size + 20] = 'B';
    EXPECT(ring.base[20] == 'B');
    printf("a byte written at buffer[10] reads at buffer[size + 10]: '%c'\n",
           ring.base[size + 10]);

    /* Both views look like mapped memory of their own. */
    {
        MEMORY_BASIC_INFORMATION mbi;
        EXPECT(VirtualQuery(ring.base, &mbi, sizeof mbi) == sizeof mbi);
        EXPECT(mbi.Type == MEM_MAPPED && mbi.State == MEM_COMMIT && mbi.RegionSize == size);
        EXPECT(VirtualQuery(ring.base + size, &mbi, sizeof mbi) == sizeof mbi);
        EXPECT(mbi.AllocationBase == ring.base + size && mbi.RegionSize == size);
    }

    /* A record written across the middle. */
    ring.head = ring.tail = size - 50;
    n = snprintf(record, sizeof record,
                 "this record starts 50 bytes before the end of the buffer and goes on past it");
    ring_write(&ring, record, (SIZE_T)n + 1);
    EXPECT(ring.head < ring.tail); /* the head wrapped to the start */
    EXPECT(memcmp(ring.base, record + 50, (SIZE_T)n + 1 - 50) == 0); /* its tail is at [0] */
    EXPECT(strcmp(ring_peek(&ring), record) == 0); /* but it reads in one piece */
    printf("wrote %d bytes at offset %zu (past the end): read back in one piece: \"%s\"\n", n + 1,
           (size_t)(size - 50), ring_peek(&ring));
    ring_consume(&ring, (SIZE_T)n + 1);
    EXPECT(ring.tail == ring.head);

    /* Many records of odd sizes, round and round the buffer, each read in place. */
    ring.head = ring.tail = 0;
    for (i = 0; i < 5000; i++) {
        SIZE_T len = 17 + (SIZE_T)(i * 31) % 150;
        memset(record, 'a' + i % 26, len);
        record[0] = (char)(i & 0x7f);
        if (ring.head + len > size)
            wrapped++; /* this one runs across the end */
        ring_write(&ring, record, len);
        if (memcmp(ring_peek(&ring), record, len) != 0) {
            printf("record %d differs\n", i);
            failures++;
            break;
        }
        ring_consume(&ring, len);
    }
    printf("5000 records of 17..166 bytes, %d of them across the end: all read in place\n",
           wrapped);
    EXPECT(wrapped > 0);

    ring_destroy(&ring);
    printf("unmapped both views and closed the section\n");

    if (failures) {
        printf("ring_buffer: %d check(s) failed\n", failures);
        return 1;
    }
    printf("ring_buffer: ok\n");
    return 0;
}
